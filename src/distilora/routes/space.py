"""Search spaces: the settings a route lets the tuner vary, as typed ranges.

A parameter fills a dotted setting of the config dataclasses: ``train.*`` the route's own ``TrainConfig``,
``distil.*`` the ``DistillationConfig``, ``lora.*`` the ``LoraConfig``, ``tfidf.*`` the ``TfidfConfig``.
``SearchSpace.suggest`` turns an Optuna trial into such settings; ``trial_params`` turns settings (a route's
defaults) back into a trial's parameters, so that they can be enqueued.
"""

from __future__ import annotations

import math
from abc import ABC, abstractmethod
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from numbers import Real
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import optuna

SECTIONS = ("train", "distil", "lora", "tfidf")
"""The prefixes of the dotted settings (see the module docstring)."""
RANGE_KEYS = frozenset({"low", "high", "log"})
CHOICE_KEYS = frozenset({"choices"})


class SpaceError(ValueError):
    """A search space or a space file that cannot be used; the message is one line naming what to fix."""


def _is_number(value: Any) -> bool:
    return isinstance(value, Real) and not isinstance(value, bool)


def _unknown_keys(spec: Mapping[str, Any], allowed: frozenset[str]) -> None:
    unknown = sorted(set(spec) - allowed)
    if unknown:
        raise SpaceError(f"unknown key(s) {', '.join(unknown)}: give {', '.join(sorted(allowed))}")


def _range_spec(spec: Mapping[str, Any]) -> dict[str, Any]:
    """The fields a space file's ``{low, high, log}`` replaces (the range itself is checked by the parameter)."""
    _unknown_keys(spec, RANGE_KEYS)
    if "log" in spec and not isinstance(spec["log"], bool):
        raise SpaceError(f"log must be true or false, got {spec['log']!r}")
    return {key: spec[key] for key in RANGE_KEYS if key in spec}


class Param(ABC):
    """One dimension of a space: ``name`` is the trial's parameter, ``setting`` the dotted setting it fills."""

    name: str

    @property
    def setting(self) -> str:
        return self.name

    @property
    def reads(self) -> tuple[str, ...]:
        """The settings this parameter's default value is read from."""
        return (self.setting,)

    @abstractmethod
    def suggest(self, trial: optuna.Trial) -> Any:
        """The trial's value (Optuna's ``suggest_*``)."""

    @abstractmethod
    def decode(self, value: Any, decoded: Mapping[str, Any]) -> Any:
        """The setting's value for the trial's ``value`` (``decoded``: the settings of the parameters before it)."""

    @abstractmethod
    def encode(self, settings: Mapping[str, Any]) -> Any:
        """The trial value that gives ``settings``; a SpaceError if none does."""

    def problem(self, settings: Mapping[str, Any]) -> str | None:
        """Why ``settings`` lie outside this parameter's range, or None when they lie inside."""
        try:
            self.encode(settings)
        except SpaceError as error:
            return str(error)
        return None

    @abstractmethod
    def replaced(self, spec: Mapping[str, Any]) -> Param:
        """This parameter with the range or choices of a space file's ``spec``."""

    @abstractmethod
    def describe(self) -> str:
        """``name in [low, high]`` or ``name in {a, b}``."""


@dataclass(frozen=True)
class FloatParam(Param):
    """A real setting in ``[low, high]``, sampled on a log scale when ``log``.

    ``as_tuple``: the setting holds a tuple of values (TF-IDF's C grid); a trial sets it to one value, and a
    default lies inside when each of its values does.
    """

    name: str
    low: float
    high: float
    log: bool = False
    key: str | None = None
    """The setting filled, when it differs from ``name``."""
    as_tuple: bool = False

    def __post_init__(self) -> None:
        if not (_is_number(self.low) and _is_number(self.high)):
            raise SpaceError(f"low and high must be numbers, got {self.low!r} and {self.high!r}")
        if not self.low < self.high:
            raise SpaceError(f"empty range: low {self.low} must be < high {self.high}")
        if self.log and self.low <= 0:
            raise SpaceError(f"a log range needs low > 0, got {self.low}")

    @property
    def setting(self) -> str:
        return self.key or self.name

    def suggest(self, trial: optuna.Trial) -> float:
        return trial.suggest_float(self.name, self.low, self.high, log=self.log)

    def decode(self, value: Any, decoded: Mapping[str, Any]) -> Any:
        return (float(value),) if self.as_tuple else float(value)

    def _values(self, settings: Mapping[str, Any]) -> tuple[Any, ...]:
        value = settings[self.setting]
        return tuple(value) if self.as_tuple else (value,)

    def encode(self, settings: Mapping[str, Any]) -> float:
        values = self._values(settings)
        if len(values) != 1:
            raise SpaceError(f"{self.setting}={values} holds {len(values)} values: give the one the default chose")
        value = values[0]
        if not _is_number(value) or not self.low <= value <= self.high:
            raise SpaceError(f"{self.setting}={value!r} lies outside [{self.low}, {self.high}]")
        return float(value)

    def problem(self, settings: Mapping[str, Any]) -> str | None:
        values = self._values(settings)
        if all(_is_number(v) and self.low <= v <= self.high for v in values):
            return None
        shown = values if self.as_tuple else values[0]
        return f"{self.setting}={shown!r} lies outside [{self.low}, {self.high}]"

    def replaced(self, spec: Mapping[str, Any]) -> FloatParam:
        return replace(self, **_range_spec(spec))

    def describe(self) -> str:
        return f"{self.name} in [{self.low:g}, {self.high:g}]" + (" (log)" if self.log else "")


@dataclass(frozen=True)
class IntParam(Param):
    """An integer setting in ``[low, high]`` (both included)."""

    name: str
    low: int
    high: int
    log: bool = False

    def __post_init__(self) -> None:
        if not all(isinstance(v, int) and not isinstance(v, bool) for v in (self.low, self.high)):
            raise SpaceError(f"low and high must be integers, got {self.low!r} and {self.high!r}")
        if not self.low < self.high:
            raise SpaceError(f"empty range: low {self.low} must be < high {self.high}")
        if self.log and self.low <= 0:
            raise SpaceError(f"a log range needs low > 0, got {self.low}")

    def suggest(self, trial: optuna.Trial) -> int:
        return trial.suggest_int(self.name, self.low, self.high, log=self.log)

    def decode(self, value: Any, decoded: Mapping[str, Any]) -> int:
        return int(value)

    def encode(self, settings: Mapping[str, Any]) -> int:
        value = settings[self.setting]
        if not _is_number(value) or value != int(value) or not self.low <= value <= self.high:
            raise SpaceError(f"{self.setting}={value!r} is not an integer in [{self.low}, {self.high}]")
        return int(value)

    def replaced(self, spec: Mapping[str, Any]) -> IntParam:
        return replace(self, **_range_spec(spec))

    def describe(self) -> str:
        return f"{self.name} in {{{self.low}..{self.high}}}" + (" (log)" if self.log else "")


def choice_label(choice: Any) -> Any:
    """The trial value of a choice: itself when Optuna can store it, ``a,b`` for a tuple of names."""
    return ",".join(map(str, choice)) if isinstance(choice, tuple) else choice


@dataclass(frozen=True)
class CategoricalParam(Param):
    """One of ``choices`` (numbers, strings, or tuples of names such as LoRA's target modules)."""

    name: str
    choices: tuple[Any, ...]

    def __post_init__(self) -> None:
        object.__setattr__(self, "choices", tuple(tuple(c) if isinstance(c, list) else c for c in self.choices))
        if not self.choices:
            raise SpaceError("empty choices: give at least one")
        if len(set(self.labels)) != len(self.labels):
            raise SpaceError(f"repeated choices in {list(self.labels)}")

    @property
    def labels(self) -> tuple[Any, ...]:
        return tuple(choice_label(c) for c in self.choices)

    def suggest(self, trial: optuna.Trial) -> Any:
        return trial.suggest_categorical(self.name, self.labels)

    def decode(self, value: Any, decoded: Mapping[str, Any]) -> Any:
        return self.choices[self.labels.index(value)]

    def encode(self, settings: Mapping[str, Any]) -> Any:
        value = settings[self.setting]
        value = tuple(value) if isinstance(value, list | tuple) else value
        for choice in self.choices:
            if choice == value and isinstance(choice, bool) == isinstance(value, bool):
                return choice_label(choice)
        raise SpaceError(f"{self.setting}={value!r} is not one of {list(self.labels)}")

    def replaced(self, spec: Mapping[str, Any]) -> CategoricalParam:
        _unknown_keys(spec, CHOICE_KEYS)
        choices = spec.get("choices")
        if not isinstance(choices, list):
            raise SpaceError(f"choices must be a list, got {choices!r}")
        return replace(self, choices=tuple(self._like_current(c) for c in choices))

    def _like_current(self, choice: Any) -> Any:
        """A space file's choice in the type of the built-in choices (a tuple of names may be written ``a,b``)."""
        current = self.choices[0]
        if isinstance(current, tuple):
            names = choice.split(",") if isinstance(choice, str) else choice
            if isinstance(names, list) and names and all(isinstance(n, str) and n.strip() for n in names):
                return tuple(n.strip() for n in names)
        elif _is_number(current) and _is_number(choice):
            return float(choice) if isinstance(current, float) else choice
        elif isinstance(current, str) and isinstance(choice, str):
            return choice
        raise SpaceError(f"choice {choice!r} is not of the kind of {current!r}")

    def describe(self) -> str:
        return f"{self.name} in {{{', '.join(map(str, self.labels))}}}"


@dataclass(frozen=True)
class RatioParam(Param):
    """A setting chosen as a multiple of another one's value: LoRA's α as ``α / r`` ∈ ``choices``."""

    name: str
    key: str
    """The setting filled (``lora.alpha``)."""
    of: str
    """The setting it is a multiple of (``lora.r``); a parameter of the same space, declared before this one."""
    choices: tuple[float, ...] = field(default=(1, 2, 4))

    def __post_init__(self) -> None:
        object.__setattr__(self, "choices", tuple(self.choices))
        if not self.choices or not all(_is_number(c) and c > 0 for c in self.choices):
            raise SpaceError(f"choices must be numbers > 0, got {list(self.choices)}")
        if len(set(self.choices)) != len(self.choices):
            raise SpaceError(f"repeated choices in {list(self.choices)}")

    @property
    def setting(self) -> str:
        return self.key

    @property
    def reads(self) -> tuple[str, ...]:
        return (self.key, self.of)

    def suggest(self, trial: optuna.Trial) -> Any:
        return trial.suggest_categorical(self.name, self.choices)

    def decode(self, value: Any, decoded: Mapping[str, Any]) -> Any:
        product = decoded[self.of] * value
        return int(product) if float(product).is_integer() else product

    def encode(self, settings: Mapping[str, Any]) -> Any:
        ratio = settings[self.key] / settings[self.of]
        for choice in self.choices:
            if math.isclose(choice, ratio):
                return choice
        raise SpaceError(f"{self.key} / {self.of} = {ratio:g} is not one of {list(self.choices)}")

    def replaced(self, spec: Mapping[str, Any]) -> RatioParam:
        _unknown_keys(spec, CHOICE_KEYS)
        choices = spec.get("choices")
        if not isinstance(choices, list):
            raise SpaceError(f"choices must be a list, got {choices!r}")
        return replace(self, choices=tuple(choices))

    def describe(self) -> str:
        return f"{self.name} ({self.key} / {self.of}) in {{{', '.join(map(str, self.choices))}}}"


@dataclass(frozen=True)
class SearchSpace:
    """The parameters a route's trials vary; spaces add up (``trainer_space() + lora_space()``)."""

    params: tuple[Param, ...] = ()

    def __post_init__(self) -> None:
        object.__setattr__(self, "params", tuple(self.params))
        names = [p.name for p in self.params]
        settings = [p.setting for p in self.params]
        for kind, values in (("parameter", names), ("setting", settings)):
            repeated = sorted({v for v in values if values.count(v) > 1})
            if repeated:
                raise SpaceError(f"{kind} {', '.join(repeated)} declared twice in one search space")
        for index, param in enumerate(self.params):
            if isinstance(param, RatioParam) and param.of not in settings[:index]:
                raise SpaceError(f"{param.name} is a multiple of {param.of}, which the space does not vary before it")

    def __add__(self, other: SearchSpace) -> SearchSpace:
        return SearchSpace(self.params + other.params)

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(p.name for p in self.params)

    def param(self, name: str) -> Param:
        for param in self.params:
            if param.name == name:
                return param
        raise SpaceError(f"no parameter {name!r} (parameters: {', '.join(self.names)})")

    def suggest(self, trial: optuna.Trial) -> dict[str, Any]:
        """The trial's settings, each parameter sampled with Optuna's ``trial.suggest_*``."""
        return self.settings_of({p.name: p.suggest(trial) for p in self.params})

    def settings_of(self, params: Mapping[str, Any]) -> dict[str, Any]:
        """The settings of a trial's parameters (``FrozenTrial.params``)."""
        decoded: dict[str, Any] = {}
        for param in self.params:
            decoded[param.setting] = param.decode(params[param.name], decoded)
        return decoded

    def defaults(self, sections: Mapping[str, object]) -> dict[str, Any]:
        """The settings this space varies, read from config objects by section: ``{"train": TrainConfig(), …}``."""
        values = {}
        for param in self.params:
            for setting in param.reads:
                section, _, attribute = setting.partition(".")
                if section not in sections or not hasattr(sections[section], attribute):
                    raise SpaceError(f"no setting {setting} in the sections given ({', '.join(sections)})")
                values[setting] = getattr(sections[section], attribute)
        return values

    def outside(self, settings: Mapping[str, Any]) -> list[str]:
        """Why each setting of ``settings`` outside the space lies there (empty: the space contains them)."""
        return [problem for p in self.params if (problem := p.problem(settings)) is not None]

    def contains(self, settings: Mapping[str, Any]) -> bool:
        return not self.outside(settings)

    def trial_params(self, settings: Mapping[str, Any]) -> dict[str, Any]:
        """The trial parameters that give ``settings`` (to enqueue them); a SpaceError naming any setting outside."""
        return {p.name: p.encode(settings) for p in self.params}

    def override(self, ranges: Mapping[str, Mapping[str, Any]], route: str) -> SearchSpace:
        """This space with ranges replaced, ``{parameter: {low, high, log} | {choices}}``; a SpaceError naming the
        route and the parameter for a parameter the space does not have, an empty range or a bad type."""
        params = list(self.params)
        for name, spec in ranges.items():
            if name not in self.names:
                raise SpaceError(f"route {route} has no parameter {name} (its parameters: {', '.join(self.names)})")
            index = self.names.index(name)
            if not isinstance(spec, Mapping):
                raise SpaceError(f"route {route}, parameter {name}: give a table of low/high/log or choices")
            try:
                params[index] = params[index].replaced(spec)
            except (SpaceError, TypeError) as error:
                raise SpaceError(f"route {route}, parameter {name}: {error}") from None
        return SearchSpace(tuple(params))

    def describe(self) -> list[str]:
        return [p.describe() for p in self.params]


TRAINER_LEARNING_RATES = (1e-5, 3e-4)
"""Full fine-tuning and distillation of whole layers."""
ADAPTER_LEARNING_RATES = (1e-4, 3e-3)
"""LoRA's adapters and head train at a higher rate (its default is 1e-3)."""
QUERY_VALUE = ("query", "value")
ALL_ATTENTION = ("query", "key", "value", "attention.output.dense")
ALL_LINEAR = ("query", "key", "value", "intermediate.dense", "output.dense")
"""BERT's module names (``output.dense`` also ends ``attention.output.dense``); the pooler and the head are not
adapted (they train in full, ``LoraConfig.modules_to_save``)."""


def trainer_space(learning_rate: tuple[float, float] = TRAINER_LEARNING_RATES) -> SearchSpace:
    """Every gradient route: learning rate (log), epochs, warm-up, weight decay, batch size."""
    low, high = learning_rate
    return SearchSpace((
        FloatParam("train.learning_rate", low, high, log=True),
        IntParam("train.epochs", 2, 8),
        FloatParam("train.warmup_ratio", 0.0, 0.2),
        FloatParam("train.weight_decay", 0.0, 0.1),
        CategoricalParam("train.batch_size", (16, 32, 64)),
    ))


def distillation_space() -> SearchSpace:
    """Distilled routes: the temperature and the weights of CE, KL, cosine and hidden-state loss."""
    return SearchSpace((
        CategoricalParam("distil.temperature", (1.0, 2.0, 4.0, 8.0)),
        FloatParam("distil.w_ce", 0.0, 1.0),
        FloatParam("distil.w_kd", 0.0, 1.0),
        FloatParam("distil.w_cos", 0.0, 1.0),
        FloatParam("distil.w_hidden", 0.0, 1.0),
    ))


def lora_space() -> SearchSpace:
    """LoRA routes: rank, α as a multiple of the rank, dropout, and the modules adapted."""
    return SearchSpace((
        CategoricalParam("lora.r", (4, 8, 16, 32)),
        RatioParam("lora.alpha_per_r", key="lora.alpha", of="lora.r", choices=(1, 2, 4)),
        FloatParam("lora.dropout", 0.0, 0.3),
        CategoricalParam("lora.target_modules", (QUERY_VALUE, ALL_ATTENTION, ALL_LINEAR)),
    ))


def tfidf_space() -> SearchSpace:
    """The TF-IDF baseline: C of the logistic regression (one value per trial) and word n-grams 1..1, 1..2, 1..3."""
    return SearchSpace((
        FloatParam("tfidf.C", 0.01, 100.0, log=True, key="tfidf.c_grid", as_tuple=True),
        CategoricalParam("tfidf.ngram_max", (1, 2, 3)),
    ))
