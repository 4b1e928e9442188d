"""Space files: ranges that replace a route's declared ones, ``{route: {parameter: {low, high, log} | {choices}}}``.

TOML or JSON. A parameter is named by its dotted name, quoted (``"train.learning_rate" = {low = 1e-5, high =
1e-4}``) or as nested tables (``[odd.train.learning_rate]``)::

    [odd]
    "train.learning_rate" = { low = 1e-5, high = 1e-4, log = true }
    "distil.temperature" = { choices = [1, 2, 4] }
"""

from __future__ import annotations

import json
import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from distilora.routes.space import CHOICE_KEYS, RANGE_KEYS, SearchSpace, SpaceError

SPEC_KEYS = RANGE_KEYS | CHOICE_KEYS


def read_space_file(path: Path) -> dict[str, dict[str, dict[str, Any]]]:
    """``{route: {parameter: spec}}`` from a TOML or JSON file; a SpaceError naming the file when it cannot be read."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as error:
        raise SpaceError(f"space file {path}: cannot read it ({error})") from None
    try:
        if path.suffix.lower() == ".toml":
            content = tomllib.loads(text)
        elif path.suffix.lower() == ".json":
            content = json.loads(text)
        else:
            raise SpaceError(f"space file {path}: name it .toml or .json")
    except (tomllib.TOMLDecodeError, json.JSONDecodeError) as error:
        raise SpaceError(f"space file {path}: not valid {path.suffix[1:].upper()} ({error})") from None
    if not isinstance(content, dict) or not all(isinstance(v, dict) for v in content.values()):
        raise SpaceError(f"space file {path}: give a table per route, {{route: {{parameter: {{low, high}}}}}}")
    return {route: _flatten(ranges, route, path) for route, ranges in content.items()}


def _flatten(table: Mapping[str, Any], route: str, path: Path, prefix: str = "") -> dict[str, dict[str, Any]]:
    """Nested tables (``[odd.train.learning_rate]``) as dotted parameter names; a leaf is a table of spec keys."""
    flat: dict[str, dict[str, Any]] = {}
    for key, value in table.items():
        name = f"{prefix}{key}"
        if not isinstance(value, dict) or not value:
            raise SpaceError(f"space file {path}: route {route}, parameter {name}: give a table of low/high/log "
                             f"or choices, got {value!r}")
        if set(value) <= SPEC_KEYS:
            flat[name] = value
        elif set(value) & SPEC_KEYS:
            unknown = ", ".join(sorted(set(value) - SPEC_KEYS))
            raise SpaceError(f"space file {path}: route {route}, parameter {name}: unknown key(s) {unknown}: give "
                             f"{', '.join(sorted(SPEC_KEYS))}")
        else:
            flat.update(_flatten(value, route, path, f"{name}."))
    return flat


def apply_space_file(path: Path, spaces: Mapping[str, SearchSpace]) -> dict[str, SearchSpace]:
    """``spaces`` (by route) with the file's ranges; a one-line SpaceError naming the file, the route and the
    parameter for a route not given, a parameter the route does not have, an empty range or a bad type."""
    ranges = read_space_file(path)
    unknown = [route for route in ranges if route not in spaces]
    if unknown:
        raise SpaceError(f"space file {path}: route {unknown[0]} is not tuned here (routes: {', '.join(spaces)})")
    result = dict(spaces)
    for route, route_ranges in ranges.items():
        try:
            result[route] = spaces[route].override(route_ranges, route)
        except SpaceError as error:
            raise SpaceError(f"space file {path}: {error}") from None
    return result
