"""Command-line options built from the config dataclasses' field metadata (:mod:`distilora.config_options`).

In the spirit of transformers' ``HfArgumentParser``, which does not fit here: it reads neither nested dataclasses
nor flag prefixes, spells flags with underscores, and gives every boolean a ``--no_x`` twin.
"""

from __future__ import annotations

import argparse
import dataclasses
import typing
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from distilora.config_options import METADATA_KEY, NotAnOption, Option, OptionGroup, names


@dataclass(frozen=True)
class FieldOption:
    """One field of a config dataclass (possibly nested) and the option that sets it."""

    path: tuple[str, ...]
    """Field names from the outer dataclass down (``("lora", "r")``)."""
    field: dataclasses.Field
    option: Option
    flag: str
    group: str | None
    """The argument group's title; None: the outer group."""
    kind: Any
    """The field's type (``int | None``, ``tuple[str, ...]``, …)."""

    @property
    def dest(self) -> str:
        return self.flag.removeprefix("--").replace("-", "_")

    @property
    def default(self) -> Any:
        """The dataclass default as argparse holds it: a comma list as its text (``--help`` shows it so, argparse
        reads it with the option's type); None for a repeated flag that was not given."""
        if self.option.items == "comma":
            return ",".join(self.field.default)
        return None if self.option.items == "repeat" else self.field.default

    def add_to(self, parser: argparse._ActionsContainer) -> argparse.Action:
        option = self.option
        if option.negated:
            return parser.add_argument(self.flag, action="store_true", dest=self.dest, help=option.help)
        settings: dict[str, Any] = {"default": self.default, "help": option.help, "dest": self.dest}
        if option.items == "repeat":
            settings["action"] = "append"
        parse = names if option.items == "comma" else option.parse or _number_type(self.kind)
        extra = {"type": parse, "choices": option.choices, "metavar": option.metavar}
        settings.update({key: value for key, value in extra.items() if value is not None})
        return parser.add_argument(self.flag, **settings)

    def value(self, args: argparse.Namespace) -> Any:
        given = getattr(args, self.dest)
        if self.option.negated:
            return not given
        if self.option.items == "repeat":
            return self.field.default if given is None else tuple(given)
        return given


def _number_type(kind: Any) -> type | None:
    """``int`` or ``float`` for a field of that type (or that type or None); None otherwise."""
    plain = [k for k in typing.get_args(kind) if k is not type(None)] or [kind]
    return plain[0] if len(plain) == 1 and plain[0] in (int, float) else None


def _marked(cls: type) -> Iterator[tuple[dataclasses.Field, Any, Any]]:
    hints = typing.get_type_hints(cls)
    for f in dataclasses.fields(cls):
        yield f, f.metadata.get(METADATA_KEY), hints[f.name]


def _field_option(f: dataclasses.Field, mark: Option, kind: Any, prefix: str, path: tuple[str, ...],
                  group: str | None) -> FieldOption:
    name = mark.name or f.name.replace("_", "-")
    flag = f"--no-{prefix}{name}" if mark.negated else f"--{prefix}{name}"
    return FieldOption((*path, f.name), f, mark, flag, group, kind)


def field_options(cls: type, prefix: str = "", path: tuple[str, ...] = (),
                  group: str | None = None) -> Iterator[FieldOption]:
    """The options of ``cls`` and of its nested option groups, in field order."""
    for f, mark, kind in _marked(cls):
        if isinstance(mark, OptionGroup):
            yield from field_options(kind, prefix + mark.prefix, (*path, f.name), mark.title)
        elif isinstance(mark, Option):
            yield _field_option(f, mark, kind, prefix, path, group)


def unmarked_fields(cls: type, path: tuple[str, ...] = ()) -> Iterator[tuple[str, ...]]:
    """Fields of ``cls`` (recursively) that are neither an option, an option group nor marked as not an option."""
    for f, mark, kind in _marked(cls):
        if isinstance(mark, OptionGroup):
            yield from unmarked_fields(kind, (*path, f.name))
        elif not isinstance(mark, Option | NotAnOption):
            yield (*path, f.name)


@dataclass
class AddedOptions:
    """What :func:`add_dataclass_arguments` added: each option's action by field path, the groups by title."""

    actions: dict[tuple[str, ...], argparse.Action] = field(default_factory=dict)
    groups: dict[str, argparse._ArgumentGroup] = field(default_factory=dict)


def add_dataclass_arguments(parser: argparse.ArgumentParser, cls: type, title: str | None = None) -> AddedOptions:
    """An option for every :class:`Option` field of ``cls``; nested groups become argument groups, created in field
    order (fields of ``cls`` itself go under ``title``, or straight into the parser when it is None)."""
    added = AddedOptions()
    exclusive: dict[tuple[str | None, str], argparse._MutuallyExclusiveGroup] = {}
    for item in field_options(cls):
        group_title = item.group or title
        if group_title is None:
            container = parser
        else:
            if group_title not in added.groups:
                added.groups[group_title] = parser.add_argument_group(group_title)
            container = added.groups[group_title]
        if item.option.exclusive:
            key = (group_title, item.option.exclusive)
            if key not in exclusive:
                exclusive[key] = container.add_mutually_exclusive_group()
            container = exclusive[key]
        added.actions[item.path] = item.add_to(container)
    return added


def dataclass_from_args(cls: type, args: argparse.Namespace, overrides: dict[str, Any] | None = None,
                        prefix: str = "") -> Any:
    """``cls`` filled in from parsed ``args``, its nested option groups too; other fields keep their defaults.
    ``overrides``: values for fields of ``cls`` itself that the caller worked out."""
    values = dict(overrides or {})
    for f, mark, kind in _marked(cls):
        if f.name in values:
            continue
        if isinstance(mark, OptionGroup):
            values[f.name] = dataclass_from_args(kind, args, prefix=prefix + mark.prefix)
        elif isinstance(mark, Option):
            values[f.name] = _field_option(f, mark, kind, prefix, (), None).value(args)
    return cls(**values)
