"""What a configuration field says about its command-line option: help, flag, choices, how the text is read.

The config dataclasses (:mod:`distilora.config`) declare their fields with :func:`option`, :func:`option_group` or
:func:`not_an_option`; :mod:`distilora.cli.options` builds the argparse options from that metadata, so help text and
defaults live in one place. The text parsers raise :class:`argparse.ArgumentTypeError`, whose message argparse
prints after the flag's name.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable, Sequence
from dataclasses import MISSING, dataclass, field
from typing import Any, Literal

METADATA_KEY = "distilora.option"

Items = Literal["comma", "repeat"]


@dataclass(frozen=True)
class Option:
    """A field given on the command line as ``--{group prefix}{name}``."""

    help: str
    name: str | None = None
    """The flag without ``--`` and the group's prefix; default: the field name with dashes."""
    parse: Callable[[str], Any] | None = None
    """Reads the text (argparse ``type``); default: the text itself."""
    choices: Sequence[str] | None = None
    metavar: str | None = None
    items: Items | None = None
    """A tuple field: ``comma``: one comma-separated value; ``repeat``: the flag once per item."""
    negated: bool = False
    """A boolean that defaults to True and is switched off by ``--no-{name}``."""
    exclusive: str | None = None
    """Options of one group sharing this key exclude each other."""


@dataclass(frozen=True)
class OptionGroup:
    """A nested config dataclass whose options form one argparse group (``--help`` shows its title)."""

    title: str
    prefix: str = ""
    """Put before the flag of each of its options (``lora-``: ``--lora-r``)."""


@dataclass(frozen=True)
class NotAnOption:
    """A field deliberately not on the command line (set from Python, or through another option)."""

    reason: str = "set from Python"


def option(default: Any = MISSING, *, help: str, **settings: Any) -> Any:
    """A dataclass field with ``default`` and the command-line option ``Option(help, **settings)``."""
    return field(default=default, metadata={METADATA_KEY: Option(help=help, **settings)})


def option_group(factory: Callable[[], Any], title: str, prefix: str = "") -> Any:
    """A nested config dataclass field whose options appear under ``title``."""
    return field(default_factory=factory, metadata={METADATA_KEY: OptionGroup(title, prefix)})


def not_an_option(default: Any = MISSING, *, default_factory: Any = MISSING, reason: str = "set from Python") -> Any:
    """A dataclass field that is explicitly not a command-line option."""
    return field(default=default, default_factory=default_factory, metadata={METADATA_KEY: NotAnOption(reason)})


def positive(kind: Callable[[str], Any]) -> Callable[[str], Any]:
    """Reads a number of ``kind`` that must be > 0."""

    def parse(text: str) -> Any:
        value = kind(text)
        if value <= 0:
            raise argparse.ArgumentTypeError(f"must be > 0, got {text}")
        return value

    return parse


def share(text: str) -> float:
    """Reads a number in (0, 1]."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be a number in (0, 1], got {text!r}") from None
    if not 0 < value <= 1:
        raise argparse.ArgumentTypeError(f"must be in (0, 1], got {text}")
    return value


def shares_by_label(text: str) -> float | dict[str, float]:
    """Reads a number in (0, 1], or one per label as ``abusive=0.8,hateful=0.7``."""
    if "=" not in text:
        return share(text)
    out: dict[str, float] = {}
    for item in filter(None, (part.strip() for part in text.split(","))):
        label, _, value = (piece.strip() for piece in item.partition("="))
        if not label or not value or label in out:
            raise argparse.ArgumentTypeError(f"expects a number or LABEL=P pairs, each label once "
                                             f"(abusive=0.8,hateful=0.7), got {item!r}")
        try:
            out[label] = share(value)
        except argparse.ArgumentTypeError as error:
            raise argparse.ArgumentTypeError(f"{label}: {error}") from None
    return out


def number(text: str) -> float:
    """Reads a float (range checks are the config's)."""
    try:
        return float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None


def names(text: str) -> tuple[str, ...]:
    """Reads ``a, b,c,`` as ``("a", "b", "c")``."""
    return tuple(name.strip() for name in text.split(",") if name.strip())
