"""``comments:suggestscore`` feedback: one JSON line (camelCase keys) per suggestion, appended to
``FEEDBACK_DIR/feedback.jsonl``.

This is the only place the server ever writes a comment down, and only when it was started with ``--feedback-dir``.
"""

from __future__ import annotations

import json
import os
import threading
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from pydantic.alias_generators import to_camel

FEEDBACK_FILE = "feedback.jsonl"


@dataclass
class FeedbackRecord:
    """One suggestion: the comment, the scores the client suggests, the scores served for it and by which model."""

    comment: str
    suggested: dict[str, Any]
    """Attribute → ``{"summaryScore": …, "spanScores": […]}`` as the client sent them."""
    served: dict[str, Any]
    """Attribute → ``{"summaryScore": value, "model": identity}``: what this server answers for the comment."""
    languages: list[str]
    client_token: str | None = None
    community_id: str | None = None
    session_id: str | None = None
    received: str = ""

    def __post_init__(self) -> None:
        self.received = self.received or datetime.now(UTC).isoformat(timespec="milliseconds")


class FeedbackStore:
    """Appends records to one JSONL file, a whole line at a time, flushed to disk before the client is answered."""

    def __init__(self, directory: Path):
        self.directory = Path(directory)
        self.directory.mkdir(parents=True, exist_ok=True)
        self.file = self.directory / FEEDBACK_FILE
        with self.file.open("a", encoding="utf-8"):  # refuse to start when the folder is not writable
            pass
        self._lock = threading.Lock()

    def append(self, record: FeedbackRecord) -> None:
        fields = {to_camel(name): value for name, value in asdict(record).items()}
        line = json.dumps(fields, ensure_ascii=False, separators=(",", ":")) + "\n"
        with self._lock, self.file.open("a", encoding="utf-8") as handle:
            handle.write(line)
            handle.flush()
            os.fsync(handle.fileno())
