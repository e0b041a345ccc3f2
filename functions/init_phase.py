"""The end of a handler's init phase.

Modules, classes, the pool and the agents built in the init phase live as long as the
container; ``end_init_phase`` tells the garbage collector so.
"""

from __future__ import annotations

import gc


def end_init_phase() -> None:
    """Keep what the init phase built out of the garbage collector's full collections.

    Modules, classes, the pool and the agents live as long as the container, yet each full
    collection of CPython's cyclic collector would walk them all again: about 56,000 objects
    and 7.7 ms per full collection, paid by whichever invocation triggers it, for the
    messages function on this machine. ``gc.freeze()`` moves every object alive now to the
    permanent generation (Python docs, ``gc.freeze``): later collections walk only what
    invocations create. Frozen objects are never freed, which is what init-phase objects
    need anyway. Call it as a handler module's last statement.
    """
    gc.freeze()
