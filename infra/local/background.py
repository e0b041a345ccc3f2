"""A daemon thread that loops until stopped: what the SQS poller and the scheduler share."""

from __future__ import annotations

import logging
import threading
from abc import ABC, abstractmethod
from typing import Self

logger = logging.getLogger(__name__)


class BackgroundLoop(ABC):
    """Runs ``_run`` in a daemon thread between ``start()`` and ``stop()``.

    ``_run`` must return soon after ``self._stop`` is set (wait on it rather than sleeping).

    Args:
        kind: What it is (``"poller"``, ``"scheduler"``), for the thread name and logs.
        function_name: The function it drives, for the thread name and logs.
    """

    def __init__(self, kind: str, function_name: str) -> None:
        self.kind = kind
        self.function_name = function_name
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> Self:
        """Start the thread.

        Returns:
            The loop itself, for chaining.

        Raises:
            RuntimeError: Already started.
        """
        if self._thread is not None:
            raise RuntimeError(f"{self.kind} already started")
        self._stop.clear()
        self._thread = threading.Thread(target=self._run, name=f"{self.kind}-{self.function_name}", daemon=True)
        self._thread.start()
        logger.info("%s for %s started%s", self.kind, self.function_name, self._detail())
        return self

    def _detail(self) -> str:
        """What the "started" log line adds after the function's name (nothing here)."""
        return ""

    def stop(self, timeout_s: float = 10) -> None:
        """Stop and wait for the thread (an invocation in progress finishes); safe to call twice.

        Args:
            timeout_s: Longest wait, in seconds.
        """
        thread = self._thread
        if thread is None:
            return
        self._stop.set()
        thread.join(timeout=timeout_s)
        if thread.is_alive():
            logger.warning("%s for %s still busy after %.1f s", self.kind, self.function_name, timeout_s)
        self._thread = None
        logger.info("%s for %s stopped", self.kind, self.function_name)

    @abstractmethod
    def _run(self) -> None:
        """The loop body, run in the thread until ``self._stop`` is set."""
