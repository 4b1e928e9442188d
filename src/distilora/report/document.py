"""A tiny, format-neutral document model: the report is built once and rendered to Markdown and HTML."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path


@dataclass
class Table:
    headers: list[str]
    rows: list[list[str]]
    caption: str = ""
    numeric: list[bool] | None = None
    """Which columns are right-aligned; default: all but the first."""

    def is_numeric(self, column: int) -> bool:
        return self.numeric[column] if self.numeric else column > 0


@dataclass
class Image:
    path: Path
    """Absolute path of the PNG file."""
    alt: str
    caption: str = ""


@dataclass
class Bullets:
    items: list[str]


Block = str | Table | Image | Bullets


@dataclass
class Section:
    title: str
    blocks: list[Block] = field(default_factory=list)


@dataclass
class Document:
    title: str
    sections: list[Section] = field(default_factory=list)
