"""A mutex that serves waiters in arrival order: SQLite's busy handler polls with growing sleeps instead."""

from __future__ import annotations

import threading
from collections import deque


class FifoLock:
    """A mutex handed to waiters in arrival order, so no participant's write starves behind luckier threads."""

    def __init__(self) -> None:
        self._mutex = threading.Lock()
        self._held = False
        self._waiters: deque[threading.Lock] = deque()

    def __enter__(self) -> FifoLock:
        with self._mutex:
            if not self._held:
                self._held = True
                return self
            baton = threading.Lock()
            baton.acquire()
            self._waiters.append(baton)
        baton.acquire()  # released by the holder that hands the lock to us; we now hold it
        return self

    def __exit__(self, *exc: object) -> None:
        with self._mutex:
            if self._waiters:
                self._waiters.popleft().release()  # ownership passes directly; _held stays True
            else:
                self._held = False
