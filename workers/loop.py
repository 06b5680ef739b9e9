"""A daemon thread that runs one step, then sleeps until woken or until the step's answer."""

from __future__ import annotations

import logging
import threading
from abc import ABC, abstractmethod

log = logging.getLogger(__name__)


class WakeableLoop(ABC):
    """Subclasses implement :meth:`run_once` (returns seconds to sleep); :meth:`wake` cuts the
    sleep short, :meth:`stop` ends the loop and joins the thread."""

    name = "loop"

    def __init__(self) -> None:
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    @abstractmethod
    def run_once(self) -> float:
        """One step of the loop; returns how many seconds to sleep before the next."""

    def wake(self) -> None:
        self._wake.set()

    def start(self) -> None:
        if self._thread is None:
            self._thread = threading.Thread(target=self._run, name=self.name, daemon=True)
            self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout=10)

    @property
    def stopping(self) -> bool:
        return self._stop.is_set()

    def _run(self) -> None:
        while not self._stop.is_set():
            self._wake.clear()
            try:
                wait = self.run_once()
            except Exception:
                log.exception("%s loop error", self.name)
                wait = 1.0
            self._wake.wait(wait)
