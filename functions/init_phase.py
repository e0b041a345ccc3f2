"""A handler's init phase, as the garbage collector should see it.

Modules, classes, the pool and the agents built in the init phase live as long as the
container. ``begin_init_phase`` (a handler module's first statement) pauses CPython's cyclic
collector while they are built; ``end_init_phase`` (its last) freezes them and resumes it.
"""

from __future__ import annotations

import gc
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from core.deployment.container import Container


def begin_init_phase() -> None:
    """Pause the cyclic garbage collector until ``end_init_phase``.

    The init phase allocates some 140,000 objects that live as long as the container and
    almost no cyclic garbage (about 750 objects for the messages function). Yet the collector,
    triggered every 700 net allocations, walks the growing heap again and again: about 200
    collections and 40-45 ms of the messages function's cold start on this machine (15-20 ms
    for embeddings and migrate). Python's docs give this pattern for long-lived start-up
    objects (``gc.freeze``: "call gc.disable() early ..., gc.freeze() right before fork()").

    Call it before the handler module's other imports: they are most of the init phase. If the
    init phase raises, the collector stays paused until a later ``end_init_phase``, which is
    harmless in Lambda: it discards a runtime whose init failed.
    """
    gc.disable()


def end_init_phase() -> None:
    """Keep what the init phase built out of later collections, then resume the collector.

    Each full collection would otherwise walk the init phase's objects again: about 56,000
    objects and 7.7 ms for the messages function on this machine, paid by whichever invocation
    triggers it. ``gc.freeze()`` moves every object alive now to the permanent generation
    (Python docs, ``gc.freeze``): later collections walk only what invocations create. Frozen
    objects are never freed, which is what init-phase objects need anyway; the init phase's few
    hundred garbage objects stay with them. Call it as a handler module's last statement. The
    collector is always resumed (also after another handler's failed init in the same process).
    """
    gc.freeze()
    gc.enable()


def build_container() -> Container:
    """The process's ``core.deployment.container.Container``, with its SnapStart hooks registered.

    Every handler module builds its container here, so SnapStart (``functions.snapstart``) is
    wired the same way in each and ``core`` knows nothing of Lambda.

    Raises:
        ConfigurationError: as ``Container`` does, or SnapStart is on without ``snapshot_restore_py``.
    """
    from core.deployment.container import Container
    from functions.snapstart import register_snapstart_hooks

    container = Container()
    register_snapstart_hooks(container)
    return container
