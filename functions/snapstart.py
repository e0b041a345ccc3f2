"""Lambda SnapStart: what a container's init phase must undo before a snapshot and redo after a restore.

With SnapStart (``SnapStart: ApplyOn: PublishedVersions``, Python 3.12 and later), Lambda runs
the init phase once, when a version is published, snapshots the microVM, and starts every later
execution environment of that version from a copy of the snapshot: cold requests skip the init
phase. Whatever the init phase holds is then shared by every copy, possibly days later (AWS
Lambda developer guide, "Handling uniqueness with Lambda SnapStart" and "Runtime hooks for
Python"). Here that is:

* the pool's database connections: their sockets belong to the snapshotted microVM. The pool's
  idle check cannot be trusted to catch them (it compares monotonic times, and a restored copy
  may have been idle for less than ``DB_POOL_CHECK_AFTER_S`` by its own clock), so the pool is
  closed before the snapshot and a new one is opened after each restore. The new pool reads the
  database secret again: it may have been rotated since the snapshot.
* the ``random`` module's state: every copy would draw the same retry jitter (``core.db.retry``,
  ``core.model_providers.http``), so restored copies retrying together would retry in step.
  It is reseeded from the operating system after each restore. UUIDs come from ``os.urandom``
  and need nothing.

Work deferred to the first invocation is done before the snapshot instead ("priming", as AWS
calls it), since the init phase costs a restored copy nothing: the pydantic validators built on
first use (``defer_build``) are built then, so the first request after a restore does not.

AWS SDK clients keep no connection that matters: botocore replaces a dead pooled connection
and retries. The hooks are registered with ``snapshot_restore_py``, which Lambda's Python
managed runtimes include (it is a dev dependency here, for the tests, and never packaged).
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from typing import TYPE_CHECKING

from pydantic import BaseModel

from core.errors import ConfigurationError

if TYPE_CHECKING:
    from core.deployment.container import Container

#: ``AWS_LAMBDA_INITIALIZATION_TYPE`` in an init phase that Lambda will snapshot (AWS Lambda
#: developer guide, "Defined runtime environment variables").
SNAP_START = "snap-start"


def register_snapstart_hooks(container: Container) -> bool:
    """Register ``container``'s before-snapshot and after-restore hooks when Lambda will snapshot it.

    Args:
        container: The container the handler module just built.

    Returns:
        ``True`` when the hooks were registered (``AWS_LAMBDA_INITIALIZATION_TYPE`` is
        ``snap-start``); ``False`` otherwise (on-demand, provisioned concurrency, local runs),
        where importing ``snapshot_restore_py`` would only cost init time.

    Raises:
        ConfigurationError: SnapStart is on but ``snapshot_restore_py`` is missing (not a Lambda
            managed runtime): a snapshot taken without the hooks would hold dead connections.
    """
    if os.environ.get("AWS_LAMBDA_INITIALIZATION_TYPE") != SNAP_START:
        return False
    try:
        from snapshot_restore_py import register_after_restore, register_before_snapshot
    except ImportError as exc:
        raise ConfigurationError(
            "AWS_LAMBDA_INITIALIZATION_TYPE is snap-start but snapshot_restore_py is not installed "
            "(Lambda's Python managed runtimes include it)"
        ) from exc
    register_before_snapshot(build_deferred_validators)
    register_before_snapshot(container.before_snapshot)
    register_after_restore(container.after_restore)
    return True


def build_deferred_validators(packages: Iterable[str] = ("core", "functions")) -> int:
    """Build the validators pydantic has not built yet (``defer_build``) of the models defined in ``packages``.

    Args:
        packages: Top-level packages whose models are built; models of other packages are left alone.

    Returns:
        How many models were built. A model that cannot be built yet (an unresolved forward
        reference) is skipped without error: it is then built on first use, as before.
    """
    roots = set(packages)
    built, pending = 0, list(BaseModel.__subclasses__())
    while pending:
        model = pending.pop()
        pending.extend(model.__subclasses__())
        if model.__module__.split(".")[0] in roots and not model.__pydantic_complete__:
            built += bool(model.model_rebuild(raise_errors=False))
    return built
