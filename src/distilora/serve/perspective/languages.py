"""Which language a comment is in, when the request does not say: py3langid (its model ships in the package)."""

from __future__ import annotations

from dataclasses import dataclass

DETECTED_CHARS = 4_000
"""Characters of a long comment the detector reads (its cost grows with the text; its answer does not change)."""


@dataclass(frozen=True)
class Detection:
    language: str
    """An ISO 639-1 code (``en``, ``de``, …)."""
    confidence: float
    """The detector's probability of ``language`` (0..1)."""


class LanguageDetector:
    """A loaded language identifier; :meth:`detect` takes about 0.1 ms for a tweet, 1 ms for 4,000 characters."""

    def __init__(self) -> None:
        from py3langid.langid import MODEL_FILE, LanguageIdentifier

        self._identifier = LanguageIdentifier.from_model_file(MODEL_FILE, norm_probs=True)

    def detect(self, text: str) -> Detection:
        language, confidence = self._identifier.classify(text[:DETECTED_CHARS])
        return Detection(str(language), float(confidence))
