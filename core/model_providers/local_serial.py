"""One daemon thread that runs jobs in order, for as long as the process lives.

The local text model forks its child process from this thread: Linux sends a child's
``PR_SET_PDEATHSIG`` when the *thread* that forked it ends (``prctl(2)``), so forking from
a pool thread that ends with its event loop (``asyncio.to_thread``, as each pytest test or
each ``asyncio.run`` has its own) would kill the model with it. A daemon thread is never
joined at interpreter exit, so it cannot hold up shutdown either.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable
from concurrent.futures import Future
from typing import Any, TypeVar

T = TypeVar("T")


class SerialThread:
    """Runs submitted callables one after another on one daemon thread.

    Args:
        name: The thread's name (shows in tracebacks and ``py-spy``).
    """

    def __init__(self, name: str) -> None:
        self._jobs: queue.SimpleQueue[tuple[Future[Any], Callable[..., Any], tuple[Any, ...]]] = queue.SimpleQueue()
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)
        self._thread.start()

    def submit(self, fn: Callable[..., T], *args: Any) -> Future[T]:
        """Queue ``fn(*args)``; the future holds its result or exception."""
        future: Future[T] = Future()
        self._jobs.put((future, fn, args))
        return future

    def _run(self) -> None:
        while True:
            future, fn, args = self._jobs.get()
            if not future.set_running_or_notify_cancel():
                continue
            try:
                result = fn(*args)
            except BaseException as exc:  # handed to whoever waits on the future
                future.set_exception(exc)
            else:
                future.set_result(result)
