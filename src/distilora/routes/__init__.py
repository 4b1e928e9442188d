"""Routes: the ways of producing a classifier (fine-tune, distil, LoRA, …), each an object in one registry."""

from distilora.routes.base import (
    Route,
    RouteContext,
    RouteError,
    RouteKind,
    configured_routes,
    create_route,
    names_of_kind,
    register_route,
    registered_routes,
    unregister_route,
)
from distilora.routes.distil import DistilledStudent, student_from_spec
from distilora.routes.finetune import FineTune
from distilora.routes.lora import Lora

__all__ = [
    "DistilledStudent",
    "FineTune",
    "Lora",
    "Route",
    "RouteContext",
    "RouteError",
    "RouteKind",
    "configured_routes",
    "create_route",
    "names_of_kind",
    "register_route",
    "registered_routes",
    "student_from_spec",
    "unregister_route",
]
