"""Read a classify request off the event loop: decode, parse and shape-check the JSON before pydantic sees it.

Every problem is one :class:`RequestRejected` with the status and a message that never echoes the client's
input (no key names, no texts), so a hostile body costs one pass over it and one short answer.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar

import anyio
import anyio.to_thread

from distilora.config import MAX_TEXT_CHARS, MAX_TEXTS

VISIBLE = (r"[^\u0000-\u0020\u007f-\u00a0\u00ad\u0600-\u0605\u061c\u06dd\u070f\u0890\u0891\u08e2\u1680\u180e"
           r"\u2000-\u200f\u2028-\u202f\u205f-\u2064\u2066-\u206f\u3000\ufeff\ufff9-\ufffb]")
"""A character that is neither white space nor a control or format (zero-width) character. The same pattern is
the API schema's, so what the schema calls a valid text is what the server accepts."""
_VISIBLE = re.compile(VISIBLE)
FIELDS = ("texts", "model")
INLINE_PARSE_BYTES = 16 * 1024
"""Bodies up to this size are parsed on the event loop (microseconds: a thread hop would cost more)."""
T = TypeVar("T")


class BodyParser:
    """Parses a request body with ``parse(body, *args)``: a small one on the event loop, a larger one (up to
    megabytes) in a worker thread, at most ``max_parsers`` at a time, so that health checks stay fast."""

    def __init__(self, max_parsers: int):
        self.max_parsers = max_parsers
        self._limiter: anyio.CapacityLimiter | None = None  # made on first use, inside the event loop

    async def parse(self, parse: Callable[..., T], body: bytes, *args: Any) -> T:
        if len(body) <= INLINE_PARSE_BYTES:
            return parse(body, *args)
        if self._limiter is None:
            self._limiter = anyio.CapacityLimiter(self.max_parsers)
        return await anyio.to_thread.run_sync(parse, body, *args, limiter=self._limiter)


class RequestRejected(Exception):
    """The request cannot be served as sent: ``status``, the ``field`` at fault and what to fix."""

    def __init__(self, status: int, message: str, field: str = "body"):
        self.status, self.message, self.field = status, message, field
        super().__init__(message)


@dataclass
class ClassifyInput:
    texts: list[str]
    model: str | None


def parse_classify(body: bytes, content_type: str) -> ClassifyInput:
    """The checked texts and model name of a ``POST /api/v1/classify`` body."""
    media = content_type.split(";")[0].strip().lower()
    if media != "application/json" and not media.endswith("+json"):
        shown = repr(media[:60]) if media else "none"
        raise RequestRejected(415, f"expected a JSON body with Content-Type: application/json, got {shown}")
    if not body.strip():
        raise RequestRejected(422, 'the request has no body; send JSON like {"texts": ["..."]}')
    try:
        data = json.loads(body.decode("utf-8"))
    except UnicodeDecodeError:
        raise RequestRejected(422, "malformed JSON: the body is not UTF-8 text") from None
    except json.JSONDecodeError as error:
        raise RequestRejected(422, f"malformed JSON at character {error.pos}: {error.msg}") from None
    except RecursionError:
        raise RequestRejected(422, "JSON nested too deeply: the body takes a list of strings") from None
    except ValueError:  # an integer over Python's conversion limit (4,300 digits)
        raise RequestRejected(422, "a number in the JSON has too many digits; the body takes a list of strings") \
            from None
    if not isinstance(data, dict):
        raise RequestRejected(422, 'the body must be a JSON object like {"texts": ["..."], "model": "odd"}')
    if any(key not in FIELDS for key in data):
        raise RequestRejected(422, 'unknown field; the body takes only "texts" and "model"')
    model = data.get("model")
    if model is not None and not isinstance(model, str):
        raise RequestRejected(422, "must be a model name (a string) or null", "model")
    return ClassifyInput(_texts(data), model)


def _texts(data: dict) -> list[str]:
    if "texts" not in data:
        raise RequestRejected(422, "required: a list of texts", "texts")
    texts = data["texts"]
    if not isinstance(texts, list):
        raise RequestRejected(422, "must be a list of strings", "texts")
    if not texts:
        raise RequestRejected(422, "empty list: send at least one text", "texts")
    if len(texts) > MAX_TEXTS:
        raise RequestRejected(413, f"too many texts ({len(texts)}): at most {MAX_TEXTS} per request", "texts")
    for i, text in enumerate(texts):
        where = f"texts[{i}]"
        if not isinstance(text, str):
            raise RequestRejected(422, "must be a string", where)
        if len(text) > MAX_TEXT_CHARS:
            raise RequestRejected(413, f"text has {len(text):,} characters: at most {MAX_TEXT_CHARS:,} characters "
                                       "per text", where)
        try:
            text.encode("utf-8")
        except UnicodeEncodeError:
            raise RequestRejected(422, "text is not valid Unicode (it holds a lone surrogate such as \\ud800)",
                                  where) from None
        if not text.strip():
            raise RequestRejected(422, "text is empty or whitespace-only", where)
        if not _VISIBLE.search(text):
            raise RequestRejected(422, "text has no visible characters (only control or zero-width ones)", where)
    return texts
