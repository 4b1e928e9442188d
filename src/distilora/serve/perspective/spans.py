"""Sentences of a comment for span scores, with offsets in the units Perspective documents: UTF-16 code units
("the UTF-16 codepoint range", end exclusive), so an emoji outside the BMP counts 2 and a combining accent 1."""

from __future__ import annotations

import bisect
import re
from dataclasses import dataclass

import sentencex

from distilora.serve.parsing import VISIBLE

_VISIBLE = re.compile(VISIBLE)
_ASTRAL = re.compile("[\U00010000-\U0010ffff]")


@dataclass(frozen=True)
class Sentence:
    """One sentence: its text and its ``[begin, end)`` in UTF-16 code units of the whole comment."""

    text: str
    begin: int
    end: int


class Utf16Offsets:
    """Python string indices (code points) → UTF-16 code unit offsets of the same text."""

    def __init__(self, text: str):
        self._astral = [match.start() for match in _ASTRAL.finditer(text)]

    def __call__(self, index: int) -> int:
        return index + bisect.bisect_left(self._astral, index)


def sentences(text: str, language: str = "en") -> list[Sentence]:
    """The sentences of ``text`` (sentencex's rules for ``language``), without their surrounding white space;
    pieces with no visible character (paragraph breaks, stray marks) are left out."""
    offsets = Utf16Offsets(text)
    found = []
    for piece in sentencex.get_sentence_boundaries(language, text):
        start, end = piece["start_index"], piece["end_index"]
        chunk = text[start:end]
        stripped = chunk.strip()
        if not stripped or not _VISIBLE.search(stripped):
            continue
        start += len(chunk) - len(chunk.lstrip())
        end = start + len(stripped)
        found.append(Sentence(stripped, offsets(start), offsets(end)))
    return found
