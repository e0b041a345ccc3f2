"""Lambda handlers: one module per function. Each does its init phase at import (module level).

The garbage collector during the init phase, in this one place: in Lambda (``AWS_LAMBDA_FUNCTION_NAME``
is set from the init phase on), importing this package (the first thing a handler module's import does)
pauses CPython's cyclic collector, and ``end_init_phase`` (each handler module's last statement) freezes
what the init phase built and resumes it. Other processes that import a module of this package (the
local stack's logging, the tests) keep their collector running.

Why: the init phase allocates some 140,000 objects that live as long as the container and almost no
cyclic garbage, yet the collector, triggered every 700 net allocations, walks the growing heap again
and again (about 200 collections). Pausing it buys 40-45 ms of the messages function's init phase on
Python 3.12 (``messages_gc_pause_buys`` in ``bench/cold_start.py``, measured in the same run against
the handler with the pause made a no-op; 15-25 ms for the other functions), over the 10 ms a cold-start
trick must buy to stay. Python's docs give this pattern for long-lived start-up objects (``gc.freeze``).
If an init phase raises, the collector stays paused until a later ``end_init_phase``: harmless in
Lambda, which discards a runtime whose init failed.
"""

from __future__ import annotations

import gc
import os

if os.environ.get("AWS_LAMBDA_FUNCTION_NAME"):  # Lambda's init phase: see the module docstring
    gc.disable()


def end_init_phase() -> None:
    """Keep what the init phase built out of later collections, then resume the collector.

    ``gc.freeze()`` moves every object alive now to the permanent generation: later full collections
    walk only what invocations create (otherwise some 56,000 objects, about 8 ms, paid by whichever
    invocation triggers one). Frozen objects are never freed, which is what init-phase objects need
    anyway. Call it as a handler module's last statement; it always resumes the collector.
    """
    gc.freeze()
    gc.enable()
