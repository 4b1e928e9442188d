"""Routes: the ways of producing a classifier (fine-tune, distil, LoRA, hybrids, baselines), one registry."""

from distilora.routes.base import (
    Route,
    RouteContext,
    RouteError,
    RouteKind,
    RouteSetup,
    configured_routes,
    create_route,
    names_of_kind,
    register_group,
    register_route,
    registered_routes,
    route_groups,
    unregister_route,
)
from distilora.routes.baselines import Majority, Tfidf
from distilora.routes.distil import DistilledStudent, ImportanceStudent, StudentWithoutTeacher, student_from_spec
from distilora.routes.finetune import FineTune
from distilora.routes.lora import Lora, LoraDistilled, StudentLora

register_group("default", ("teacher", "odd", "even", "lora", "odd-no-kd", "tfidf", "majority"))
register_group("all", ("teacher", "odd", "even", "first", "last", "importance", "odd-no-kd", "tfidf", "majority",
                       "lora", "lora-dora", "lora-rslora", "lora-pissa", "lora-adalora", "lora-kd", "odd-lora"))

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
    "Tfidf",
    "configured_routes",
    "create_route",
    "names_of_kind",
    "register_group",
    "register_route",
    "registered_routes",
    "route_groups",
    "student_from_spec",
    "unregister_route",
]
