"""Calibrated scores and an operating point, fitted on the validation split only.

* **Temperature scaling**: one scalar ``T`` per model, ``softmax(logits / T)``, chosen by minimising the validation
  negative log-likelihood (scipy's bounded scalar minimiser, on ``log T``). It never changes the argmax.
* **Expected calibration error** (ECE): the top-class probability in equal-width bins (15 by default), the
  item-weighted mean of ``|accuracy − mean confidence|`` per bin; the bins themselves are the reliability diagram.
* **Decision threshold** (binary tasks only): the positive class is label id 1 (``hate`` in both shared datasets:
  line 2 of their labels.txt). A text is called positive when its calibrated probability of the positive class is
  at least the threshold. Policies: the threshold maximising validation macro-F1 (default), the one with the
  highest recall whose precision is at least P (``--target-precision``), or the one with the highest precision
  whose recall is at least R (``--target-recall``). Multi-class tasks get temperature scaling only: argmax.
* **Multi-label tasks** (0/1 gold rows, one column per label): each label gets its own temperature (minimising its
  validation binary cross-entropy of ``sigmoid(logit / T)``) and its own threshold, chosen by the same policies on
  that label's 0/1 gold (a global target applies to every label; a label that cannot reach it keeps 0.5 and
  ``note`` names it). ECE counts every (item, label) probability as one binary event.

What is stored with a model (``calibration.json``) is a :class:`Calibration`; :func:`calibration_summary` is what
results.json keeps per model.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
from scipy.optimize import minimize_scalar
from scipy.special import expit, log_softmax, softmax
from sklearn.metrics import precision_recall_fscore_support

from distilora.config import CalibrationConfig
from distilora.evaluation.metrics import classification_metrics, wilson
from distilora.label_space import DEFAULT_THRESHOLD, decide_labels, gold_array, is_multi_label, label_probabilities

POSITIVE_INDEX = 1
"""The positive class of a binary task: label id 1 (the toxic / hate class of the shared datasets)."""
FORMAT = 1
MAX_MACRO_F1 = "max-macro-f1"
TARGET_PRECISION = "target-precision"
TARGET_RECALL = "target-recall"
ARGMAX = "argmax"
POLICY_WORDS = {MAX_MACRO_F1: "the highest validation macro-F1",
                TARGET_PRECISION: "the highest validation recall with precision ≥ {target:g}",
                TARGET_RECALL: "the highest validation precision with recall ≥ {target:g}",
                ARGMAX: "the argmax (no threshold)"}
CONFIDENCE = 0.95
ARGMAX_DECISION = {"rule": ARGMAX, "threshold": None, "positive_label": None, "policy": ARGMAX, "target": None,
                   "temperature": None}
"""What a response says about a model that is not calibrated: the raw softmax and the argmax."""


def policy_words(policy: str | None, target: float | None = None) -> str:
    """``the highest validation recall with precision ≥ 0.8`` for a threshold policy (its own name if unknown)."""
    return POLICY_WORDS.get(policy, str(policy)).format(target=target)


# ---- temperature ---------------------------------------------------------------------------------------------
def nll(logits: np.ndarray, y_true: np.ndarray, temperature: float = 1.0) -> float:
    """Mean negative log-likelihood of ``softmax(logits / temperature)``."""
    logits, y_true = np.asarray(logits, dtype=np.float64), np.asarray(y_true, dtype=np.int64)
    if not len(y_true):
        return float("nan")
    return float(-log_softmax(logits / temperature, axis=-1)[np.arange(len(y_true)), y_true].mean())


def fit_temperature(logits: np.ndarray, y_true: Sequence[int], bounds: tuple[float, float] = (0.05, 20.0)) -> float:
    """The temperature in ``bounds`` minimising the NLL of ``logits / T`` (1.0 for an empty split)."""
    logits, y_true = np.asarray(logits, dtype=np.float64), np.asarray(y_true, dtype=np.int64)
    if not len(y_true):
        return 1.0
    result = minimize_scalar(lambda log_t: nll(logits, y_true, math.exp(log_t)),
                             bounds=(math.log(bounds[0]), math.log(bounds[1])), method="bounded",
                             options={"xatol": 1e-5})
    return float(math.exp(result.x))


def scaled_probabilities(logits: np.ndarray, temperature: float) -> np.ndarray:
    return softmax(np.asarray(logits, dtype=np.float64) / temperature, axis=-1)


# ---- calibration error ---------------------------------------------------------------------------------------
def reliability_bins(probs: np.ndarray, y_true: Sequence[int], n_bins: int = 15) -> list[dict[str, Any]]:
    """Equal-width bins ``(lower, upper]`` of the top-class probability: items, mean confidence, accuracy."""
    probs, y_true = np.asarray(probs, dtype=np.float64), np.asarray(y_true, dtype=np.int64)
    confidence = probs.max(axis=1) if len(probs) else np.zeros(0)
    correct = (probs.argmax(axis=1) == y_true) if len(probs) else np.zeros(0, dtype=bool)
    edges = np.linspace(0.0, 1.0, n_bins + 1)
    index = np.clip(np.searchsorted(edges, confidence, side="left") - 1, 0, n_bins - 1)
    bins = []
    for b in range(n_bins):
        inside = index == b
        count = int(inside.sum())
        bins.append({"lower": float(edges[b]), "upper": float(edges[b + 1]), "count": count,
                     "confidence": float(confidence[inside].mean()) if count else None,
                     "accuracy": float(correct[inside].mean()) if count else None})
    return bins


def binary_events(probs: np.ndarray, y_true: Sequence[Sequence[int]]) -> tuple[np.ndarray, np.ndarray]:
    """A multi-label split's (item, label) probabilities as binary events: rows ``[1 − p, p]`` and their 0/1 gold,
    so that :func:`reliability_bins` bins the confidence of each label's own decision."""
    p = np.asarray(probs, dtype=np.float64).ravel()
    return np.stack([1 - p, p], axis=1), gold_array(y_true).ravel()


def ece_of_bins(bins: Sequence[Mapping[str, Any]]) -> float:
    total = sum(b["count"] for b in bins)
    if not total:
        return float("nan")
    return float(sum(b["count"] / total * abs(b["accuracy"] - b["confidence"]) for b in bins if b["count"]))


def expected_calibration_error(probs: np.ndarray, y_true: Sequence[int], n_bins: int = 15) -> float:
    """ECE: ``Σ_b (n_b / n) · |accuracy_b − confidence_b|`` over equal-width bins of the top-class probability."""
    return ece_of_bins(reliability_bins(probs, y_true, n_bins))


# ---- operating points ----------------------------------------------------------------------------------------
@dataclass(frozen=True)
class OperatingPoint:
    """Calling a text positive when ``p_positive >= threshold``, and what that gives on the items it was fitted on."""

    threshold: float
    precision: float
    recall: float
    macro_f1: float
    predicted_positive: int

    def to_dict(self) -> dict[str, float]:
        return asdict(self)


def operating_points(y_true: Sequence[int], p_positive: Sequence[float]) -> list[OperatingPoint]:
    """Every distinct decision on these items that calls at least one positive, highest threshold first.

    Each threshold lies half-way between two neighbouring distinct scores (the lowest: half-way to 0), so it
    separates the items the same way the score itself does, without sitting on a validation item; where the two
    scores are so close that the half-way point rounds onto the lower one, it is the higher score itself. Either way
    ``p >= threshold`` calls exactly ``predicted_positive`` of these items positive.
    """
    y = np.asarray(y_true, dtype=np.int64) == POSITIVE_INDEX
    scores = np.asarray(p_positive, dtype=np.float64)
    if y.shape != scores.shape:
        raise ValueError(f"{len(y)} labels for {len(scores)} scores")
    order = np.argsort(-scores, kind="stable")
    scores, y = scores[order], y[order]
    distinct = np.flatnonzero(np.r_[scores[1:] != scores[:-1], True])  # last index of each distinct score
    tp = np.cumsum(y)[distinct].astype(np.float64)
    fp = (distinct + 1) - tp
    positives, negatives = float(y.sum()), float(len(y) - y.sum())
    fn, tn = positives - tp, negatives - fp
    precision = tp / (tp + fp)
    recall = np.divide(tp, positives, out=np.zeros_like(tp), where=positives > 0)
    f1_pos = np.divide(2 * tp, 2 * tp + fp + fn, out=np.zeros_like(tp), where=(2 * tp + fp + fn) > 0)
    f1_neg = np.divide(2 * tn, 2 * tn + fn + fp, out=np.zeros_like(tn), where=(2 * tn + fn + fp) > 0)
    values = scores[distinct]
    halfway = (values[:-1] + values[1:]) / 2
    thresholds = np.r_[np.where(halfway > values[1:], halfway, values[:-1]), values[-1:] / 2]
    return [OperatingPoint(float(t), float(p), float(r), float((a + b) / 2), int(tp_ + fp_))
            for t, p, r, a, b, tp_, fp_ in zip(thresholds, precision, recall, f1_pos, f1_neg, tp, fp, strict=True)]


@dataclass(frozen=True)
class ThresholdPolicy:
    """How the threshold is chosen: ``max-macro-f1``, or ``target-precision`` / ``target-recall`` with a target."""

    kind: str = MAX_MACRO_F1
    target: float | None = None

    def __post_init__(self) -> None:
        if self.kind not in (MAX_MACRO_F1, TARGET_PRECISION, TARGET_RECALL):
            raise ValueError(f"unknown threshold policy {self.kind!r}")
        if (self.kind == MAX_MACRO_F1) != (self.target is None):
            raise ValueError(f"policy {self.kind} {'takes no' if self.kind == MAX_MACRO_F1 else 'needs a'} target")
        if self.target is not None and not 0 < self.target <= 1:
            raise ValueError(f"--{self.kind} must be in (0, 1], got {self.target}")

    @classmethod
    def from_config(cls, config: CalibrationConfig) -> ThresholdPolicy:
        if config.target_precision is not None:
            return cls(TARGET_PRECISION, config.target_precision)
        if config.target_recall is not None:
            return cls(TARGET_RECALL, config.target_recall)
        return cls()

    def describe(self) -> str:
        return policy_words(self.kind, self.target)


def choose_threshold(y_true: Sequence[int], p_positive: Sequence[float],
                     policy: ThresholdPolicy | None = None) -> OperatingPoint:
    """The operating point ``policy`` picks on these items; ValueError, naming the best reachable value, if none fits.

    Ties: max-macro-F1 takes the threshold nearest 0.5 (the argmax's); a precision target the higher precision,
    then the higher threshold; a recall target the higher recall, then the higher threshold.
    """
    policy = policy or ThresholdPolicy()
    points = operating_points(y_true, p_positive)
    if not points:
        raise ValueError("no items to choose a threshold on")
    if not any(p.recall > 0 for p in points) and policy.kind != MAX_MACRO_F1:
        raise ValueError("the validation split has no positive items, so no precision or recall target can be met")
    tolerance = 1e-12
    if policy.kind == MAX_MACRO_F1:
        return max(points, key=lambda p: (p.macro_f1, -abs(p.threshold - 0.5)))
    if policy.kind == TARGET_PRECISION:
        reachable = [p for p in points if p.precision >= policy.target - tolerance]
        if not reachable:
            best = max(points, key=lambda p: (p.precision, p.recall))
            raise ValueError(f"--target-precision {policy.target:g} is not reachable on validation: the best "
                             f"precision there is {best.precision:.3f} (recall {best.recall:.3f}, threshold "
                             f"{best.threshold:.3f})")
        return max(reachable, key=lambda p: (p.recall, p.precision, p.threshold))
    reachable = [p for p in points if p.recall >= policy.target - tolerance]
    if not reachable:  # only without positives: calling every item positive has recall 1
        best = max(points, key=lambda p: (p.recall, p.precision))
        raise ValueError(f"--target-recall {policy.target:g} is not reachable on validation: the best recall there "
                         f"is {best.recall:.3f}")
    return max(reachable, key=lambda p: (p.precision, p.recall, p.threshold))


# ---- what a model stores -------------------------------------------------------------------------------------
@dataclass
class Calibration:
    """A model's temperature and decision rule (``calibration.json`` in its directory)."""

    labels: list[str]
    temperature: float = 1.0
    threshold: float | None = None
    """Call the positive class when its calibrated probability is at least this; None: the argmax."""
    policy: str = ARGMAX
    target: float | None = None
    positive_index: int | None = None
    fitted_on: str = "validation"
    n_fitted: int = 0
    validation: dict[str, float] = field(default_factory=dict)
    """Precision, recall (positive class) and macro-F1 at the threshold on the items it was chosen on."""
    ece: dict[str, dict[str, float]] = field(default_factory=dict)
    """``{split: {"before": ..., "after": ...}}`` at ``ece_bins`` bins."""
    ece_bins: int = 15
    note: str | None = None
    """Why there is no threshold (multi-class, one class in validation, a constant score, an unreachable target), if
    there is none; multi-label: which labels kept temperature 1 or threshold 0.5, and why."""
    temperatures: list[float] | None = None
    """Multi-label only: each label's temperature (``temperature`` is then their geometric mean)."""
    thresholds: list[float] | None = None
    """Multi-label only: each label's threshold (a label is on when its calibrated probability is at least it)."""
    targets: list[float | None] | None = None
    """Multi-label only: each label's precision / recall target (None: the highest macro-F1 of its decision)."""
    label_validation: list[dict[str, float] | None] | None = None
    """Multi-label only: each label's operating point on validation (None: the label kept 0.5)."""

    def __post_init__(self) -> None:
        if not (isinstance(self.temperature, int | float) and math.isfinite(self.temperature)
                and self.temperature > 0):
            raise ValueError(f"calibration temperature must be a finite number > 0, got {self.temperature!r}")
        if self.multi_label:
            self._check_label_lists()
        if self.threshold is not None:
            if len(self.labels) != 2 or self.positive_index not in (0, 1):
                raise ValueError("a calibration threshold needs a binary task and a positive class id (0 or 1)")
            if not (isinstance(self.threshold, int | float) and 0 <= self.threshold <= 1):
                raise ValueError(f"calibration threshold must be in [0, 1], got {self.threshold!r}")

    def _check_label_lists(self) -> None:
        for name in ("temperatures", "thresholds"):
            values = getattr(self, name)
            if not isinstance(values, list) or len(values) != len(self.labels):
                raise ValueError(f"calibration {name} must be a list of one number per label ({len(self.labels)})")
        if not all(isinstance(t, int | float) and math.isfinite(t) and t > 0 for t in self.temperatures):
            raise ValueError(f"calibration temperatures must be finite numbers > 0, got {self.temperatures!r}")
        if not all(isinstance(t, int | float) and 0 <= t <= 1 for t in self.thresholds):
            raise ValueError(f"calibration thresholds must be in [0, 1], got {self.thresholds!r}")

    @property
    def multi_label(self) -> bool:
        """A multi-label model's calibration: a temperature and a threshold per label."""
        return self.thresholds is not None or self.temperatures is not None

    @property
    def positive_label(self) -> str | None:
        return self.labels[self.positive_index] if self.positive_index is not None else None

    def probabilities(self, logits: np.ndarray) -> np.ndarray:
        """Temperature-scaled class probabilities (multi-label: each label's sigmoid at its own temperature)."""
        if self.multi_label:
            return label_probabilities(logits, True, self.temperatures)
        return scaled_probabilities(logits, self.temperature)

    def decide(self, probs: np.ndarray) -> np.ndarray:
        """Class ids: the positive class at or above the threshold (binary), else the argmax; multi-label: ``(n,
        labels)`` 0/1 rows, each label on at or above its own threshold."""
        probs = np.asarray(probs, dtype=np.float64)
        if self.multi_label:
            return decide_labels(probs.reshape(-1, len(self.labels)), self.thresholds)
        if not len(probs):
            return np.zeros(0, dtype=np.int64)
        if self.threshold is None:
            return probs.argmax(axis=1)
        positive = int(self.positive_index)  # type: ignore[arg-type]
        return np.where(probs[:, positive] >= self.threshold, positive, 1 - positive).astype(np.int64)

    def decision(self) -> dict[str, Any]:
        """What a response says about how its labels were chosen (multi-label: ``rule`` ``threshold`` with no single
        ``threshold``, and each label's ``thresholds``, ``temperatures`` and ``targets``)."""
        if self.multi_label:
            return {"rule": "threshold", "threshold": None, "positive_label": None, "policy": self.policy,
                    "target": self.target, "temperature": self.temperature,
                    "thresholds": dict(zip(self.labels, self.thresholds, strict=True)),
                    "temperatures": dict(zip(self.labels, self.temperatures, strict=True)),
                    "targets": dict(zip(self.labels, self.targets, strict=True)) if self.targets else None}
        return {"rule": "threshold" if self.threshold is not None else ARGMAX, "threshold": self.threshold,
                "positive_label": self.positive_label if self.threshold is not None else None,
                "policy": self.policy, "target": self.target, "temperature": self.temperature}

    def describe(self) -> str:
        """One line, e.g. ``P(hate) ≥ 0.412 (the highest validation macro-F1); temperature 1.31``."""
        if self.multi_label:
            return self._describe_labels()
        if self.threshold is None:
            rule = "argmax" + (f" ({self.note})" if self.note else "")
        else:
            rule = (f"P({self.positive_label}) ≥ {self.threshold:.3f} "
                    f"({ThresholdPolicy(self.policy, self.target).describe()})")
        return f"{rule}; temperature {self.temperature:.3g}"

    def _describe_labels(self) -> str:
        """``P(insult) ≥ 0.412, P(threat) ≥ 0.500 (…); temperatures 1.31, 0.92``, with the policy of each label."""
        rules = ", ".join(f"P({label}) ≥ {t:.3f}" for label, t in zip(self.labels, self.thresholds, strict=True))
        targets = self.targets or [None] * len(self.labels)
        if len(set(targets)) == 1:
            kind = self.policy if targets[0] is not None else MAX_MACRO_F1
            policy = f"{policy_words(kind, targets[0])}, per label"
        else:
            policy = "; ".join(f"{label}: {policy_words(self.policy if t is not None else MAX_MACRO_F1, t)}"
                               for label, t in zip(self.labels, targets, strict=True))
        note = f"; {self.note}" if self.note else ""
        return f"{rules} ({policy}{note}); temperatures {', '.join(f'{t:.3g}' for t in self.temperatures)}"

    def to_json(self) -> str:
        fields = {k: v for k, v in asdict(self).items() if v is not None or k not in MULTI_LABEL_FIELDS}
        return json.dumps({"format": FORMAT, **fields, "positive_label": self.positive_label}, indent=1)

    @classmethod
    def from_json(cls, text: str, labels: Sequence[str] | None = None) -> Calibration:
        """Parse ``calibration.json``; ValueError when it is malformed or made for other labels."""
        try:
            raw = json.loads(text)
            if not isinstance(raw, dict) or raw.get("format") != FORMAT:
                raise ValueError(f"unknown format {raw.get('format') if isinstance(raw, dict) else raw!r}")
            known = {k: v for k, v in raw.items() if k in cls.__dataclass_fields__}
            calibration = cls(**known)
        except (TypeError, ValueError) as error:
            raise ValueError(f"calibration.json is malformed ({error}); re-run `distilora run` to refit it") from error
        if labels is not None and list(labels) != list(calibration.labels):
            raise ValueError(f"calibration.json was fitted for labels {calibration.labels}, the model has "
                             f"{list(labels)}; re-run `distilora run` to refit it")
        return calibration


MULTI_LABEL_FIELDS = ("temperatures", "thresholds", "targets", "label_validation")
""":class:`Calibration` fields only a multi-label model has (left out of a single-label calibration.json)."""


def fit_calibration(logits: np.ndarray, y_true: Sequence[int], labels: Sequence[str],
                    config: CalibrationConfig | None = None) -> Calibration:
    """Temperature and (binary) threshold from validation logits. An unreachable target leaves the argmax, and
    ``note`` says why (the caller reports it). A validation split with a single class fits nothing: no threshold
    (every one would be trivial) and no temperature (the NLL of one class only rewards confidence)."""
    config = config or CalibrationConfig()
    if is_multi_label(y_true):
        return fit_label_calibration(logits, y_true, labels, config)
    logits, y_true = np.asarray(logits, dtype=np.float64), np.asarray(y_true, dtype=np.int64)
    present = np.unique(y_true)
    if len(present) < 2:
        return Calibration(list(labels), n_fitted=len(y_true), ece_bins=config.ece_bins,
                           note=one_class_note(labels, present, len(y_true)))
    temperature = fit_temperature(logits, y_true, config.temperature_bounds)
    calibration = Calibration(list(labels), temperature, n_fitted=len(y_true), ece_bins=config.ece_bins)
    if len(labels) != 2:
        calibration.note = f"{len(labels)} classes: temperature scaling only, decisions at the argmax"
        return calibration
    p_positive = scaled_probabilities(logits, temperature)[:, POSITIVE_INDEX]
    if len(np.unique(p_positive)) < 2:
        calibration.note = "the same score for every validation item: no threshold can separate them"
        return calibration
    policy = ThresholdPolicy.from_config(config)
    try:
        point = choose_threshold(y_true, p_positive, policy)
    except ValueError as error:
        calibration.note = str(error)
        return calibration
    calibration.threshold, calibration.policy, calibration.target = point.threshold, policy.kind, policy.target
    calibration.positive_index = POSITIVE_INDEX
    calibration.validation = {"precision": point.precision, "recall": point.recall, "macro_f1": point.macro_f1}
    return calibration


def one_class_note(labels: Sequence[str], present: np.ndarray, n: int) -> str:
    """Why a validation split with at most one class gets no threshold and no temperature."""
    held = f"only '{labels[int(present[0])]}' ({n} items)" if len(present) else "no items"
    return (f"the validation split holds {held}: a threshold or temperature fitted on it would be meaningless, so "
            "the raw softmax and the argmax are kept")


# ---- multi-label: a temperature and a threshold per label ----------------------------------------------------
@dataclass(frozen=True)
class LabelFit:
    """One label's temperature and threshold; ``point``: its validation operating point (None: it kept 0.5)."""

    temperature: float
    threshold: float = DEFAULT_THRESHOLD
    point: OperatingPoint | None = None
    note: str | None = None


def label_targets(config: CalibrationConfig, labels: Sequence[str]) -> tuple[str, float | None, list[float | None]]:
    """The policy kind, the global target (None when there is none or it is given per label) and each label's
    target (None: the highest macro-F1 of that label's decision)."""
    for kind, given in ((TARGET_PRECISION, config.target_precision), (TARGET_RECALL, config.target_recall)):
        if isinstance(given, Mapping):
            return kind, None, [given.get(label) for label in labels]
        if given is not None:
            return kind, float(given), [float(given)] * len(labels)
    return MAX_MACRO_F1, None, [None] * len(labels)


def fit_label(scores: np.ndarray, gold: np.ndarray, label: str, policy: ThresholdPolicy,
              bounds: tuple[float, float]) -> LabelFit:
    """One label's temperature (its validation binary cross-entropy) and threshold (``policy`` on its 0/1 gold)."""
    present = np.unique(gold)
    if len(present) < 2:
        held = f"only {'positives' if present[0] else 'negatives'}" if len(present) else "no items"
        return LabelFit(1.0, note=f"{label}: validation holds {held}, so it keeps temperature 1 and threshold "
                                  f"{DEFAULT_THRESHOLD:g}")
    # The BCE of sigmoid(x / T) is the NLL of softmax([0, x] / T): the softmax fit serves each label.
    temperature = fit_temperature(np.stack([np.zeros_like(scores), scores], axis=1), gold, bounds)
    p_positive = expit(scores / temperature)
    if len(np.unique(p_positive)) < 2:
        return LabelFit(temperature, note=f"{label}: the same score for every validation item, so it keeps "
                                          f"threshold {DEFAULT_THRESHOLD:g}")
    try:
        point = choose_threshold(gold, p_positive, policy)
    except ValueError as error:
        return LabelFit(temperature, note=f"{label} keeps threshold {DEFAULT_THRESHOLD:g}: {error}")
    return LabelFit(temperature, point.threshold, point)


def fit_label_calibration(logits: np.ndarray, y_true: Sequence[Sequence[int]], labels: Sequence[str],
                          config: CalibrationConfig) -> Calibration:
    """A temperature and a threshold per label from validation logits and 0/1 gold rows; ``note`` names every label
    that kept temperature 1 or threshold 0.5 (a single gold value, a constant score, an unreachable target)."""
    logits, y_true = np.asarray(logits, dtype=np.float64), gold_array(y_true)
    kind, target, targets = label_targets(config, labels)
    fits = [fit_label(logits[:, j], y_true[:, j], label, ThresholdPolicy(kind, t) if t is not None else
                      ThresholdPolicy(), config.temperature_bounds)
            for j, (label, t) in enumerate(zip(labels, targets, strict=True))]
    temperatures, thresholds = [f.temperature for f in fits], [f.threshold for f in fits]
    validation = {}
    if len(y_true):
        decided = decide_labels(label_probabilities(logits, True, temperatures), thresholds)
        precision, recall, f1, _ = precision_recall_fscore_support(y_true, decided, average="macro", zero_division=0)
        validation = {"precision": float(precision), "recall": float(recall), "macro_f1": float(f1)}
    notes = [f.note for f in fits if f.note]
    return Calibration(
        list(labels), float(np.exp(np.mean(np.log(temperatures)))), policy=kind, target=target,
        n_fitted=len(y_true), ece_bins=config.ece_bins, note="; ".join(notes) or None, validation=validation,
        temperatures=temperatures, thresholds=thresholds, targets=targets,
        label_validation=[f.point.to_dict() if f.point else None for f in fits])


# ---- what results.json keeps ---------------------------------------------------------------------------------
def proportion_interval(count: int, n: int, confidence: float = CONFIDENCE) -> dict[str, float | int] | None:
    """The share ``count / n`` with its Wilson score interval (None for ``n = 0``)."""
    if n <= 0:
        return None
    low, high = wilson(count, n, confidence)
    return {"estimate": count / n, "low": low, "high": high, "count": int(count), "n": int(n)}


def intervals_overlap(a: Mapping[str, float], b: Mapping[str, float]) -> bool:
    return a["low"] <= b["high"] and b["low"] <= a["high"]


def calibration_summary(calibration: Calibration, logits: Mapping[str, np.ndarray],
                        y_true: Mapping[str, Sequence[int]]) -> tuple[dict[str, Any], dict[str, Any] | None]:
    """results.json's ``calibration`` (ECE before / after, reliability bins, predicted-positive rates with Wilson
    intervals, prior shift) and ``metrics_at_threshold`` (None when the decision is the argmax).

    Also fills ``calibration.ece``. Multi-label gold (0/1 rows): :func:`label_calibration_summary`.
    """
    if calibration.multi_label:
        return label_calibration_summary(calibration, logits, y_true)
    bins = calibration.ece_bins
    summary = _summary_head(calibration)
    at_threshold: dict[str, Any] = {}
    rates: dict[str, Any] = {}
    shares: dict[str, Any] = {}
    for split, split_logits in logits.items():
        y = np.asarray(y_true[split], dtype=np.int64)
        raw = scaled_probabilities(split_logits, 1.0)
        scaled = calibration.probabilities(split_logits)
        before, after = reliability_bins(raw, y, bins), reliability_bins(scaled, y, bins)
        summary["ece"][split] = {"before": ece_of_bins(before), "after": ece_of_bins(after)}
        summary["reliability"][split] = {"before": before, "after": after}
        decided = calibration.decide(scaled)
        if calibration.threshold is not None:
            at_threshold[split] = classification_metrics(y, np.asarray(split_logits) / calibration.temperature,
                                                         calibration.labels, y_pred=decided)
        if len(calibration.labels) == 2:
            rates[split] = proportion_interval(int((decided == POSITIVE_INDEX).sum()), len(y))
            shares[split] = proportion_interval(int((y == POSITIVE_INDEX).sum()), len(y))
    calibration.ece = summary["ece"]
    if rates:
        summary["predicted_positive_rate"] = rates
        summary["positive_share"] = shares
        summary["decision"] = "threshold" if calibration.threshold is not None else ARGMAX
        pair = (rates.get("validation"), rates.get("test"))
        summary["prior_shift"] = bool(all(pair) and not intervals_overlap(*pair))  # type: ignore[arg-type]
    return summary, (at_threshold or None)


def _summary_head(calibration: Calibration) -> dict[str, Any]:
    return {
        "temperature": calibration.temperature, "threshold": calibration.threshold, "policy": calibration.policy,
        "target": calibration.target, "positive_label": calibration.positive_label,
        "positive_index": calibration.positive_index, "validation_at_threshold": calibration.validation or None,
        "note": calibration.note, "ece_bins": calibration.ece_bins, "ece": {}, "reliability": {},
    }


def label_calibration_summary(calibration: Calibration, logits: Mapping[str, np.ndarray],
                              y_true: Mapping[str, Sequence[Sequence[int]]]
                              ) -> tuple[dict[str, Any], dict[str, Any]]:
    """A multi-label model's ``calibration`` (each label's temperature and threshold; ECE and reliability bins over
    every (item, label) probability taken as one binary event) and ``metrics_at_threshold`` (every split, at the
    per-label thresholds). Also fills ``calibration.ece``."""
    bins = calibration.ece_bins
    summary = {**_summary_head(calibration), "temperatures": calibration.temperatures,
               "thresholds": calibration.thresholds}
    at_threshold: dict[str, Any] = {}
    for split, split_logits in logits.items():
        y, split_logits = gold_array(y_true[split]), np.asarray(split_logits, dtype=np.float64)
        scaled = calibration.probabilities(split_logits)
        before = reliability_bins(*binary_events(expit(split_logits), y), bins)
        after = reliability_bins(*binary_events(scaled, y), bins)
        summary["ece"][split] = {"before": ece_of_bins(before), "after": ece_of_bins(after)}
        summary["reliability"][split] = {"before": before, "after": after}
        at_threshold[split] = classification_metrics(y, split_logits / np.asarray(calibration.temperatures),
                                                     calibration.labels, y_pred=calibration.decide(scaled))
    calibration.ece = summary["ece"]
    return summary, at_threshold


def positive_class_rates(matrix: Sequence[Sequence[int]], positive: int = POSITIVE_INDEX) -> dict[str, float | None]:
    """Precision and recall of the positive class from a confusion matrix (rows: true, columns: predicted)."""
    m = np.asarray(matrix, dtype=np.float64)
    if m.shape != (2, 2):
        return {"precision": None, "recall": None}
    predicted, actual = m[:, positive].sum(), m[positive].sum()
    return {"precision": float(m[positive, positive] / predicted) if predicted else None,
            "recall": float(m[positive, positive] / actual) if actual else None}
