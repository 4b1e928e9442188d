"""Read and check a Perspective request: every problem is one 400 INVALID_ARGUMENT (415 for a body not declared as
JSON) whose message names the field and never repeats the comment."""

from __future__ import annotations

import math
import re
from typing import TypeVar

from pydantic import ValidationError

from distilora.serve.parsing import VISIBLE
from distilora.serve.perspective.attributes import AttributeTable, ServedAttribute, primary_language
from distilora.serve.perspective.errors import PerspectiveError, invalid
from distilora.serve.perspective.schemas import (
    SCORE_TYPES,
    TEXT_TYPES,
    AttributeParameters,
    Message,
    SuggestedScore,
    TextEntry,
)

M = TypeVar("M", bound=Message)
_VISIBLE = re.compile(VISIBLE)
_LANGUAGE = re.compile(r"[A-Za-z]{2,3}([-_][A-Za-z0-9]{1,8})*")
SHOWN_CHARS = 64


def shown(name: str) -> str:
    """A client-given name as an error message may repeat it: at most 64 characters."""
    return name if len(name) <= SHOWN_CHARS else name[: SHOWN_CHARS - 3] + "..."


def read_message(body: bytes, content_type: str, message: type[M]) -> M:
    """The body as ``message``; 415 unless it is declared as JSON (so a cross-site form cannot post it)."""
    media = content_type.split(";")[0].strip().lower()
    if media != "application/json" and not media.endswith("+json"):
        raise PerspectiveError(415, "Send the request as JSON (Content-Type: application/json).")
    if not body.strip():
        raise invalid("Invalid JSON payload received. The body is empty.")
    try:
        return message.model_validate_json(body)
    except ValidationError as error:
        raise invalid(_first_problem(error)) from None


def _first_problem(error: ValidationError) -> str:
    problem = error.errors(include_input=False, include_url=False)[0]
    where = ".".join(shown(str(part)) for part in problem["loc"])
    if problem["type"] == "json_invalid":
        return "Invalid JSON payload received. The body is not valid JSON."
    if problem["type"] == "extra_forbidden":
        parent, _, field = where.rpartition(".")
        return f'Invalid JSON payload received. Unknown name "{field}"{f" at {parent!r}" if parent else ""}: ' \
               "Cannot find field."
    if problem["type"] == "missing":
        return f"Invalid JSON payload received. Required field '{where}' is missing."
    return f"Invalid value at '{where}': {problem['msg']}."


def checked_comment(entry: TextEntry, limit: int, field: str = "comment") -> str:
    """The comment's text, or a 400 saying what is wrong with it."""
    text = entry.text
    if entry.type not in (None, *TEXT_TYPES):
        raise invalid(f"{field}.type {shown(entry.type)} is not supported; send PLAIN_TEXT.")
    if not text:
        raise invalid(f"{field}.text is required and must not be empty.")
    if len(text) > limit:
        raise invalid(f"Comment text is too long: {len(text):,} characters, over the limit of {limit:,}.")
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        raise invalid(f"{field}.text is not valid Unicode (it holds a lone surrogate such as \\ud800).") from None
    if not _VISIBLE.search(text):
        raise invalid(f"{field}.text has no visible characters (only white space, control or zero-width ones).")
    return text


def checked_attributes(requested: dict[str, AttributeParameters], table: AttributeTable,
                       ) -> list[tuple[ServedAttribute, AttributeParameters]]:
    """The requested attributes, served ones only, with sound parameters; a 400 naming the first that is not."""
    served = ", ".join(table.names) or "none"
    if not requested:
        raise invalid(f"requestedAttributes must name at least one attribute; this server serves: {served}.")
    checked = []
    for name, parameters in requested.items():
        attribute = table.get(name)
        if attribute is None:
            raise invalid(f"Unknown attribute {shown(name)}; this server serves: {served}.")
        if parameters.score_type not in (None, *SCORE_TYPES):
            raise invalid(f"requestedAttributes.{name}.scoreType {shown(parameters.score_type)} is not supported: "
                          "this server returns PROBABILITY scores.")
        threshold = parameters.score_threshold
        if threshold is not None and not (math.isfinite(threshold) and 0 <= threshold <= 1):
            raise invalid(f"requestedAttributes.{name}.scoreThreshold must be between 0 and 1.")
        checked.append((attribute, parameters))
    return checked


def checked_languages(languages: list[str] | None) -> list[str]:
    """The request's languages as primary subtags (``en-US`` → ``en``), in order, once each."""
    codes = []
    for i, code in enumerate(languages or ()):
        if not _LANGUAGE.fullmatch(code):
            raise invalid(f"languages[{i}] is not a language code; use ISO 639-1 codes such as \"en\".")
        codes.append(primary_language(code))
    return list(dict.fromkeys(codes))


def checked_score(score: SuggestedScore, where: str) -> None:
    """A suggested score: a probability, of a score type this server answers."""
    if not (math.isfinite(score.value) and 0 <= score.value <= 1):
        raise invalid(f"{where}.value must be a probability between 0 and 1.")
    if score.type not in (None, *SCORE_TYPES):
        raise invalid(f"{where}.type {shown(score.type)} is not supported: this server takes PROBABILITY scores.")
