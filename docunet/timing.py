"""StageTimer: wall time per pipeline stage (featurize, encoder, pooling, head, decode) for benchmarks."""
from __future__ import annotations

import time
from collections import defaultdict
from contextlib import contextmanager
from typing import Callable, Iterator


class StageTimer:
    def __init__(self, sync: Callable[[], None] | None = None):
        self.seconds: dict[str, float] = defaultdict(float)
        self._sync = sync or (lambda: None)

    @contextmanager
    def __call__(self, stage: str) -> Iterator[None]:
        self._sync()
        t0 = time.perf_counter()
        try:
            yield
        finally:
            self._sync()
            self.seconds[stage] += time.perf_counter() - t0

    def reset(self) -> None:
        self.seconds.clear()


class NullTimer:
    @contextmanager
    def __call__(self, stage: str) -> Iterator[None]:
        yield


NULL_TIMER = NullTimer()
