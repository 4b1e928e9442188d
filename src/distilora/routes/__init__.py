"""Routes: the ways of producing a classifier (fine-tune, distil, LoRA, hybrids, baselines), one registry.

Importing this package loads neither torch nor a route: :mod:`~distilora.routes.kinds` and
:mod:`~distilora.routes.registry` are light, the route classes are loaded on first use, and the modules of the
built-in routes are imported before the registry's first lookup. Each registers its routes with their place in the
run order of the ``default`` group and of ``all``: teacher, the layer-selected students, the no-teacher ablation
and the text baselines, then LoRA and its variants and the hybrids (``default``: LoRA before the baselines).
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from distilora.routes.kinds import RouteError, RouteKind
from distilora.routes.registry import (
    RouteSetup,
    add_route_modules,
    configured_routes,
    create_route,
    is_route_name,
    register_route,
    register_spec_resolver,
    registered_routes,
    route_groups,
    routes_tagged,
    selected_names,
    unregister_route,
)

if TYPE_CHECKING:
    from distilora.routes.base import Route, RouteContext, TrainerRoute
    from distilora.routes.baselines import Majority, TextBaselineRoute, Tfidf
    from distilora.routes.distil import (
        DistilledStudent,
        ImportanceStudent,
        StudentWithoutTeacher,
        student_from_spec,
    )
    from distilora.routes.finetune import FineTune
    from distilora.routes.lora import Lora, LoraDistilled, StudentLora

add_route_modules(*(f"{__name__}.{module}" for module in ("finetune", "distil", "baselines", "lora", "tuned")))

_LAZY = {
    "base": ("Route", "RouteContext", "TrainerRoute"),
    "baselines": ("Majority", "TextBaselineRoute", "Tfidf"),
    "distil": ("DistilledStudent", "ImportanceStudent", "StudentWithoutTeacher", "student_from_spec"),
    "finetune": ("FineTune",),
    "lora": ("Lora", "LoraDistilled", "StudentLora"),
}
_MODULE_OF = {name: module for module, names in _LAZY.items() for name in names}


def __getattr__(name: str) -> Any:
    """The route classes, imported (with torch and transformers) when first asked for."""
    if name not in _MODULE_OF:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f"{__name__}.{_MODULE_OF[name]}"), name)
    globals()[name] = value
    return value


__all__ = [
    "DistilledStudent",
    "FineTune",
    "ImportanceStudent",
    "Lora",
    "LoraDistilled",
    "Majority",
    "Route",
    "RouteContext",
    "RouteError",
    "RouteKind",
    "RouteSetup",
    "StudentLora",
    "StudentWithoutTeacher",
    "TextBaselineRoute",
    "Tfidf",
    "TrainerRoute",
    "configured_routes",
    "create_route",
    "is_route_name",
    "register_route",
    "register_spec_resolver",
    "registered_routes",
    "route_groups",
    "routes_tagged",
    "selected_names",
    "student_from_spec",
    "unregister_route",
]
