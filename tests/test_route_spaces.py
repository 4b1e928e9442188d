"""Routes declare what ``distilora tune`` may vary: every registered route's defaults lie inside its space."""

from __future__ import annotations

import pytest

from distilora.config import ExperimentConfig
from distilora.routes import RouteSetup, create_route, registered_routes

SETUP = RouteSetup(teacher_depth=12, student_depth=6)


@pytest.mark.parametrize("name", registered_routes())
def test_every_route_s_default_settings_lie_inside_its_declared_space(name):
    config = ExperimentConfig()
    route = create_route(name, SETUP)
    space = route.search_space(config)
    if space is None:
        pytest.skip(f"{name} has nothing to tune")
    defaults = space.defaults(route.tuning_sections(config))
    assert space.outside(defaults) == []


def test_the_routes_declare_the_spaces_of_their_kind():
    config = ExperimentConfig()
    names = {name: create_route(name, SETUP).search_space(config) for name in ("teacher", "majority", "odd",
                                                                               "odd-no-kd", "lora", "lora-kd", "tfidf")}
    assert names["teacher"] is None and names["majority"] is None
    assert "distil.temperature" in names["odd"].names and "lora.r" not in names["odd"].names
    assert "distil.temperature" not in names["odd-no-kd"].names and "train.learning_rate" in names["odd-no-kd"].names
    assert "lora.r" in names["lora"].names and "distil.temperature" not in names["lora"].names
    assert {"lora.r", "distil.w_kd"} <= set(names["lora-kd"].names)
    assert set(names["tfidf"].names) == {"tfidf.C", "tfidf.ngram_max"}
