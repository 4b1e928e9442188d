"""Peak resident memory of a stage: psutil RSS sampled by a background thread."""

from __future__ import annotations

import threading

import psutil

MEMORY_METHOD = (
    "psutil RSS of the whole bench process, sampled every 10 ms by a background thread (plus at the start and "
    "end of the stage). peak_rss_mb is the process's peak while the stage ran; peak_increase_mb is that peak "
    "minus the RSS at the stage's start. Memory freed by earlier stages may stay mapped (allocator caches), so "
    "the increase is a lower bound of what the stage alone needs; GPU memory is not included."
)
MB = 2**20


class PeakRSS:
    """``with PeakRSS() as memory: ...`` then ``memory.as_dict()``."""

    def __init__(self, interval: float = 0.01):
        self.interval = interval
        self.process = psutil.Process()
        self.start = self.peak = 0
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def _sample(self) -> None:
        self.peak = max(self.peak, self.process.memory_info().rss)

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            self._sample()

    def __enter__(self) -> PeakRSS:
        self.start = self.peak = self.process.memory_info().rss
        self._stop.clear()
        self._thread = threading.Thread(target=self._run, name="bench-rss", daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc_info) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
        self._sample()

    def as_dict(self) -> dict[str, float]:
        return {
            "rss_start_mb": round(self.start / MB, 1),
            "peak_rss_mb": round(self.peak / MB, 1),
            "peak_increase_mb": round((self.peak - self.start) / MB, 1),
        }
