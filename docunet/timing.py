"""StageTimer: wall time per pipeline stage (featurize, encoder, pooling, head, decode) for benchmarks."""
from __future__ import annotations

import threading
import time
from collections import defaultdict
from contextlib import contextmanager
from typing import Callable, Iterator


class StageTimer:
    def __init__(self, sync: Callable[[], None] | None = None):
        self.seconds: dict[str, float] = defaultdict(float)  # with several workers: summed over them
        self._sync = sync or (lambda: None)
        self._lock = threading.Lock()

    @contextmanager
    def __call__(self, stage: str) -> Iterator[None]:
        self._sync()
        t0 = time.perf_counter()
        try:
            yield
        finally:
            self._sync()
            with self._lock:
                self.seconds[stage] += time.perf_counter() - t0

    def reset(self) -> None:
        self.seconds.clear()


class NullTimer:
    @contextmanager
    def __call__(self, stage: str) -> Iterator[None]:
        yield


NULL_TIMER = NullTimer()
