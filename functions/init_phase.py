"""A handler's container: the composition root (``core.deployment``) with Lambda's SnapStart hooks.

The collector's pause during the init phase is ``functions/__init__.py``'s. The migrate function
builds no container and does not import this module (it would load the pool and the adapter).
"""

from __future__ import annotations

from core.deployment.container import Container
from core.embeddings.queue import AfterResponse
from functions.snapstart import register_snapstart_hooks


def build_container(after_response: AfterResponse | None = None) -> Container:
    """The process's ``core.deployment.container.Container``, with its SnapStart hooks registered.

    Every handler module builds its container here, so SnapStart (``functions.snapstart``) is
    wired the same way in each and ``core`` knows nothing of Lambda.

    Args:
        after_response: ``functions.after_response.AfterResponse.defer`` for a function whose
            embedding requests may be sent after its response (the messages function).

    Raises:
        ConfigurationError: as ``Container`` does, or SnapStart is on without ``snapshot_restore_py``.
    """
    container = Container(after_response=after_response)
    register_snapstart_hooks(container)
    return container
