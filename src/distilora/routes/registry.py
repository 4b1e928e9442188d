"""The one registry of routes: names, groups (``--routes default``), tags, and resolvers for layer specs.

A route module registers its routes when it is imported, with the groups they belong to; every route is in the
``all`` group. The package (:mod:`distilora.routes`) names the modules that hold the built-in routes, and they are
imported before the first lookup, so this module imports no route and no torch.
"""

from __future__ import annotations

import importlib
import math
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from distilora.config import ExperimentConfig
from distilora.routes.kinds import RouteError, RouteKind

if TYPE_CHECKING:
    from distilora.routes.base import Route

ALL = "all"
"""The group every registered route belongs to."""


@dataclass(frozen=True)
class RouteSetup:
    """What a route factory is told: the teacher's depth and the students' depth (``--student-depth``)."""

    teacher_depth: int
    student_depth: int


RouteFactory = Callable[[RouteSetup], "Route"]
"""Makes a route for a teacher of ``setup.teacher_depth`` layers."""


@dataclass(frozen=True)
class Registration:
    factory: RouteFactory
    groups: Mapping[str, float]
    """Group name → the route's place in it (``inf``: after the placed routes, in registration order)."""
    tags: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class SpecResolver:
    """Makes a route for a name that is not registered but has a form it understands (e.g. ``1,4,6``)."""

    matches: Callable[[str], bool]
    make: Callable[[str, RouteSetup], Route]
    description: str
    """What the names look like, for the unknown-route error (``a list of teacher layers such as 1,3,5``)."""


_REGISTRY: dict[str, Registration] = {}
_RESOLVERS: list[SpecResolver] = []
_ROUTE_MODULES: list[str] = []


def add_route_modules(*modules: str) -> None:
    """Modules whose import registers routes: imported (once, in this order) before the first lookup."""
    _ROUTE_MODULES.extend(m for m in modules if m not in _ROUTE_MODULES)


def _load_route_modules() -> None:
    for module in _ROUTE_MODULES:
        importlib.import_module(module)


def _placed(groups: Iterable[str] | Mapping[str, int]) -> dict[str, float]:
    if isinstance(groups, str):
        groups = (groups,)
    if isinstance(groups, Mapping):
        return {name: float(place) for name, place in groups.items()}
    return dict.fromkeys(groups, math.inf)


def register_route(name: str, factory: RouteFactory | None = None, *,
                   groups: Iterable[str] | Mapping[str, int] = (), tags: Mapping[str, str] | None = None,
                   replace: bool = False):
    """Register ``factory`` under ``name`` (usable as a decorator). ``replace=True`` overrides an existing one.

    ``groups``: the groups the route belongs to besides ``all``, as names (the route comes after the routes with a
    place, in registration order) or ``{group: place}``. ``tags``: facts other parts look routes up by, e.g.
    ``{"lora-variant": "dora"}`` (:func:`routes_tagged`).
    """

    def add(factory: RouteFactory) -> RouteFactory:
        if name in _REGISTRY and not replace:
            raise RouteError(f"a route named {name!r} is already registered")
        _REGISTRY[name] = Registration(factory, _placed(groups), dict(tags or {}))
        return factory

    return add(factory) if factory is not None else add


def unregister_route(name: str) -> None:
    _REGISTRY.pop(name, None)


def register_spec_resolver(matches: Callable[[str], bool], make: Callable[[str, RouteSetup], Route],
                           description: str) -> None:
    """Let :func:`create_route` make a route for unregistered names that ``matches`` accepts."""
    _RESOLVERS.append(SpecResolver(matches, make, description))


def registered_routes() -> list[str]:
    _load_route_modules()
    return sorted(_REGISTRY)


def route_groups() -> dict[str, tuple[str, ...]]:
    """Every group and its routes in run order (by place, then registration order); ``all`` last."""
    _load_route_modules()
    members: dict[str, list[tuple[float, int, str]]] = {}
    for index, (name, registration) in enumerate(_REGISTRY.items()):
        for group, place in {**registration.groups, ALL: registration.groups.get(ALL, math.inf)}.items():
            members.setdefault(group, []).append((place, index, name))
    order = [group for group in members if group != ALL] + [ALL]
    return {group: tuple(name for *_, name in sorted(members[group])) for group in order if group in members}


def routes_tagged(tag: str) -> dict[str, str]:
    """``{value: route name}`` of the routes registered with ``tags={tag: value}``, in registration order."""
    _load_route_modules()
    return {r.tags[tag]: name for name, r in _REGISTRY.items() if tag in r.tags}


def student_depth(config: ExperimentConfig, teacher_depth: int) -> int:
    """``config.student_depth``, or half the teacher's depth; checked against the teacher."""
    depth = config.student_depth if config.student_depth is not None else max(1, teacher_depth // 2)
    if not 1 <= depth < teacher_depth:
        raise RouteError(f"--student-depth {depth}: a student of a {teacher_depth}-layer teacher needs 1 to "
                         f"{teacher_depth - 1} layers")
    return depth


def create_route(name: str, setup: RouteSetup) -> Route:
    """The registered route ``name``, or the route a spec resolver makes of it (a layer list such as ``1,4,6``)."""
    _load_route_modules()
    if name in _REGISTRY:
        return _REGISTRY[name].factory(setup)
    for resolver in _RESOLVERS:
        if resolver.matches(name):
            return resolver.make(name, setup)
    other_forms = f" (or {' or '.join(r.description for r in _RESOLVERS)})" if _RESOLVERS else ""
    raise RouteError(f"unknown route {name!r}; registered: {', '.join(registered_routes())}; groups: "
                     f"{', '.join(sorted(route_groups()))}{other_forms}")


def is_route_name(name: str) -> bool:
    """Whether ``name`` selects routes: a registered route, a group, or a form a spec resolver accepts."""
    return name in registered_routes() or name in route_groups() or any(r.matches(name) for r in _RESOLVERS)


def selected_names(config: ExperimentConfig) -> list[str]:
    """``config.routes`` with groups expanded, then ``config.students``; the teacher first; each name once."""
    groups = route_groups()
    names = ["teacher"]
    for name in (*config.routes, *config.students):
        for member in groups.get(name, (name,)):
            if member not in names:
                names.append(member)
    return names


def configured_routes(config: ExperimentConfig, teacher_depth: int) -> list[Route]:
    """The routes a run trains, in order: the teacher, then the selected routes and students.

    Checked before any training: every name is known, every layer spec fits the teacher, no layers twice.
    """
    setup = RouteSetup(teacher_depth, student_depth(config, teacher_depth))
    routes = [create_route(name, setup) for name in selected_names(config)]
    names: set[str] = set()
    student_layers: dict[tuple[int, ...], str] = {}
    for route in routes:
        if route.name in names:
            raise RouteError(f"route {route.name!r} is selected twice")
        names.add(route.name)
        if route.kind is RouteKind.DISTIL and route.layers is not None and route.variant_of is None:
            key = tuple(route.layers)
            if key in student_layers:
                raise RouteError(f"routes {student_layers[key]!r} and {route.name!r} select the same student "
                                 f"layers {route.layers}")
            student_layers[key] = route.name
    return routes
