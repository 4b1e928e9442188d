"""One ``distilora run`` at a time per run directory."""

from __future__ import annotations

import fcntl
import os
from typing import IO

from distilora.run_dir.layout import RunLayout


class RunLocked(Exception):
    """Another process is running ``distilora run`` on the same output directory."""


class RunLock:
    """An exclusive lock on a run for a ``with`` block; :class:`RunLocked` at once if another process has it.

    The operating system drops the lock when its process ends, however it ends (``kill -9`` included).
    """

    def __init__(self, run: RunLayout):
        self.run = run
        self._handle: IO[str] | None = None

    def __enter__(self) -> RunLock:
        self.run.ensure_writable()
        handle = (self.run.root / ".lock").open("a+")
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.seek(0)
            holder = handle.read().strip() or "unknown"
            handle.close()
            raise RunLocked(f"{self.run.root} is in use by another distilora run (PID {holder}); wait for it to end "
                            "or choose another --output-dir") from None
        try:
            handle.seek(0)
            handle.truncate()
            handle.write(str(os.getpid()))
            handle.flush()
        except BaseException:
            handle.close()
            raise
        self._handle = handle
        return self

    def __exit__(self, *exc_info: object) -> None:
        if self._handle is not None:
            self._handle.close()  # closing the file releases the lock
            self._handle = None
