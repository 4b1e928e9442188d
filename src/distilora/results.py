"""results.json as typed records: what a run writes and every reader (report, model cards, service, exports) reads.

Each record reads its part of the file with :meth:`JsonRecord.from_json` and writes it back with
:meth:`JsonRecord.to_json`. Reading is tolerant of runs made by older versions: a key the file lacks takes the
field's default (None, empty) and is left out again on writing; a key this schema does not declare is kept in the
record's ``extra`` (a model's route-specific facts, such as ``importance`` or ``ablation_of``, live there); keys
keep the order they were read in. So ``Record.from_json(data).to_json() == data``, key order included, for any
file a run wrote.
A value of the wrong shape (a list where an object belongs) is a :class:`ResultsError` naming where it is.
"""

from __future__ import annotations

import dataclasses
import functools
import types
import typing
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar, Self

OMIT_NONE = {"omit_none": True}
"""Field metadata: a None value is left out of the JSON (keys that only some runs or models have)."""


class ResultsError(ValueError):
    """results.json (or a part of it) is not shaped as a run writes it."""


@functools.cache
def _hints(cls: type) -> dict[str, Any]:
    return typing.get_type_hints(cls)


def _decode(hint: Any, value: Any, where: str) -> Any:
    """``value`` read as ``hint``: records from objects, typed dicts and lists item by item, anything else as is."""
    if value is None:
        return None
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if origin in (typing.Union, types.UnionType):
        inner = [arg for arg in args if arg is not type(None)]
        return _decode(inner[0], value, where) if len(inner) == 1 else value
    if isinstance(hint, type) and issubclass(hint, JsonRecord):
        return hint.from_json(value, where)
    if origin is dict:
        if not isinstance(value, Mapping):
            raise ResultsError(f"{where}: expected an object, found {type(value).__name__}")
        return {key: _decode(args[1], item, f"{where}.{key}") for key, item in value.items()}
    if origin is list:
        if not isinstance(value, list):
            raise ResultsError(f"{where}: expected a list, found {type(value).__name__}")
        return [_decode(args[0], item, f"{where}[{i}]") for i, item in enumerate(value)]
    return value


def _encode(value: Any) -> Any:
    if isinstance(value, JsonRecord):
        return value.to_json()
    if isinstance(value, Mapping):
        return {key: _encode(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [_encode(item) for item in value]
    return value


def _default(f: dataclasses.Field) -> Any:
    if f.default is not dataclasses.MISSING:
        return f.default
    return f.default_factory() if f.default_factory is not dataclasses.MISSING else dataclasses.MISSING


@dataclass
class JsonRecord:
    """A JSON object with declared keys (the dataclass fields), unknown keys kept in ``extra``."""

    extra: dict[str, Any] = field(default_factory=dict, kw_only=True, repr=False)
    """Keys this schema does not declare, kept as read so that writing the record back loses nothing."""
    source_keys: tuple[str, ...] | None = field(default=None, kw_only=True, repr=False, compare=False)
    """The keys of the JSON object it was read from, in order (None: made in code). On writing, a declared key it
    lacked stays out while the field keeps its default, and the keys keep this order."""

    _OWN: ClassVar[tuple[str, ...]] = ("extra", "source_keys")

    @classmethod
    def _json_fields(cls) -> list[dataclasses.Field]:
        return [f for f in dataclasses.fields(cls) if f.name not in JsonRecord._OWN]

    @classmethod
    def from_json(cls, data: Any, where: str | None = None) -> Self:
        """The record of ``data`` (a dict as ``json.load`` gives it); ``where``: its place, for error messages."""
        where = where or cls.__name__
        if not isinstance(data, Mapping):
            raise ResultsError(f"{where}: expected an object, found {type(data).__name__}")
        hints, values = _hints(cls), {}
        for f in cls._json_fields():
            if f.name in data:
                values[f.name] = _decode(hints[f.name], data[f.name], f"{where}.{f.name}")
            elif _default(f) is dataclasses.MISSING:
                raise ResultsError(f"{where}: the key {f.name!r} is missing")
        declared = {f.name for f in cls._json_fields()}
        extra = {key: value for key, value in data.items() if key not in declared}
        return cls(**values, extra=extra, source_keys=tuple(data))

    def to_json(self) -> dict[str, Any]:
        """The JSON object: the declared keys (less None-omitted ones, and those the source lacked), then ``extra``;
        in the source's key order where it was read from JSON."""
        out: dict[str, Any] = {}
        for f in self._json_fields():
            value = getattr(self, f.name)
            if value is None and f.metadata.get("omit_none"):
                continue
            if self.source_keys is not None and f.name not in self.source_keys and value == _default(f):
                continue
            out[f.name] = _encode(value)
        out.update(_encode(self.extra))
        if self.source_keys is None:
            return out
        return {key: out[key] for key in self.source_keys if key in out} | out


# ---- numbers with intervals -------------------------------------------------------------------------------------
@dataclass
class Interval(JsonRecord):
    """A point estimate and its confidence interval."""

    estimate: float
    low: float
    high: float


@dataclass
class Proportion(Interval):
    """A share ``count / n`` with its (Wilson) interval."""

    count: int = 0
    n: int = 0


@dataclass
class MetricIntervals(JsonRecord):
    """95 % bootstrap intervals of a model's accuracy and macro-F1 on one split."""

    accuracy: Interval | None = field(default=None, metadata=OMIT_NONE)
    macro_f1: Interval | None = field(default=None, metadata=OMIT_NONE)


@dataclass
class LabelScores(JsonRecord):
    """One label of a multi-label task on one split: its own binary precision / recall / F1 / ROC-AUC."""

    label: str
    precision: float | None = None
    recall: float | None = None
    f1: float | None = None
    roc_auc: float | None = None
    """None when the split holds only positives or only negatives of the label."""
    support: int = 0
    """Items the label is on in the gold data."""
    predicted: int = 0
    """Items the model turns the label on for."""


@dataclass
class SplitMetrics(JsonRecord):
    """:func:`distilora.evaluation.metrics.classification_metrics` of one model on one split.

    Multi-label tasks: ``accuracy`` is subset accuracy (every label right), ``macro_f1`` / ``precision`` / ``recall``
    the unweighted means over labels, ``f1_per_class`` each label's F1, ``roc_auc`` the macro mean over labels, and
    the keys below are set; ``confusion_matrix`` holds one ``[tn, fp, fn, tp]`` row per label.
    """

    n: int | None = None
    loss: float | None = None
    accuracy: float | None = None
    macro_f1: float | None = None
    precision: float | None = None
    """Macro precision."""
    recall: float | None = None
    """Macro recall."""
    f1_per_class: list[float] = field(default_factory=list)
    confusion_matrix: list[list[int]] = field(default_factory=list)
    """Rows: true class, columns: predicted class."""
    roc_auc: float | None = field(default=None, metadata=OMIT_NONE)
    """Binary and multi-label tasks only."""
    micro_f1: float | None = field(default=None, metadata=OMIT_NONE)
    """Multi-label only: F1 over every (item, label) decision."""
    hamming_loss: float | None = field(default=None, metadata=OMIT_NONE)
    """Multi-label only: the share of (item, label) decisions that are wrong."""
    label_ranking_ap: float | None = field(default=None, metadata=OMIT_NONE)
    """Multi-label only: label-ranking average precision of the scores."""
    per_label: list[LabelScores] | None = field(default=None, metadata=OMIT_NONE)
    """Multi-label only: each label's scores, in label order."""


# ---- calibration, collapse ----------------------------------------------------------------------------------------
@dataclass
class ThresholdScores(JsonRecord):
    """The positive class's precision and recall, and macro-F1, at the tuned threshold on validation."""

    precision: float | None = None
    recall: float | None = None
    macro_f1: float | None = None


@dataclass
class EceChange(JsonRecord):
    """Expected calibration error of the raw softmax and after temperature scaling."""

    before: float | None = None
    after: float | None = None


@dataclass
class ReliabilityBin(JsonRecord):
    lower: float
    upper: float
    count: int = 0
    confidence: float | None = None
    accuracy: float | None = None


@dataclass
class ReliabilityCurves(JsonRecord):
    before: list[ReliabilityBin] = field(default_factory=list)
    after: list[ReliabilityBin] = field(default_factory=list)


@dataclass
class CalibrationSummary(JsonRecord):
    """A model's ``calibration``: temperature, decision threshold, ECE and reliability per split, the share called
    positive (binary tasks) and whether it shifts between validation and test."""

    temperature: float = 1.0
    threshold: float | None = None
    policy: str | None = None
    target: float | None = None
    positive_label: str | None = None
    positive_index: int | None = None
    validation_at_threshold: ThresholdScores | None = None
    note: str | None = None
    ece_bins: int = 15
    ece: dict[str, EceChange] = field(default_factory=dict)
    reliability: dict[str, ReliabilityCurves] = field(default_factory=dict)
    predicted_positive_rate: dict[str, Proportion | None] | None = field(default=None, metadata=OMIT_NONE)
    positive_share: dict[str, Proportion | None] | None = field(default=None, metadata=OMIT_NONE)
    decision: str | None = field(default=None, metadata=OMIT_NONE)
    prior_shift: bool | None = field(default=None, metadata=OMIT_NONE)
    temperatures: list[float] | None = field(default=None, metadata=OMIT_NONE)
    """Multi-label only: one temperature per label (``temperature`` is then their geometric mean)."""
    thresholds: list[float] | None = field(default=None, metadata=OMIT_NONE)
    """Multi-label only: one decision threshold per label (a label is on at or above its own)."""

    def rate(self, split: str) -> Proportion | None:
        """The share of ``split`` called positive by the applied decision, if recorded."""
        return (self.predicted_positive_rate or {}).get(split)

    def true_share(self, split: str) -> Proportion | None:
        """The share of ``split`` labelled positive, if recorded."""
        return (self.positive_share or {}).get(split)


@dataclass
class PerturbedScores(JsonRecord):
    """A model's decisions on the test split with one kind of spelling perturbation applied."""

    consistency: Proportion | None = None
    """Test items whose decided label is the one on the clean text (Wilson interval)."""
    accuracy: float | None = None
    macro_f1: float | None = None
    changed_texts: int | None = None
    """Test texts the perturbation changed (one it cannot change, e.g. without letters, keeps its clean decision)."""


@dataclass
class Robustness(JsonRecord):
    """A model's ``robustness``: its decisions (as served: calibrated, at the threshold) on perturbed copies of the
    test split, one copy per kind, the same seeded copies for every model."""

    consistency: Proportion | None = None
    """Test items whose decided label no perturbation changed (Wilson interval)."""
    accuracy: float | None = None
    """Mean over the kinds of the accuracy on the perturbed copy."""
    macro_f1: float | None = None
    """Mean over the kinds of the macro-F1 on the perturbed copy."""
    clean_accuracy: float | None = None
    clean_macro_f1: float | None = None
    """On the clean test split with the same decisions, to set beside the perturbed ones."""
    kinds: dict[str, PerturbedScores] = field(default_factory=dict)
    seed: int | None = None
    word_share: float | None = None
    """Share of the words a perturbation changes in a text (at least one)."""
    seconds: float | None = None
    """What the measure added to the model's evaluation."""


@dataclass
class Augmentation(JsonRecord):
    """``--augment``: perturbed copies (same label) of a seeded share of the training rows, added once per run."""

    kinds: list[str] = field(default_factory=list)
    rate: float | None = None
    """The share of training rows copied."""
    word_share: float | None = None
    seed: int | None = None
    rows_added: int | None = None


@dataclass
class CollapseCheck(JsonRecord):
    """Whether a model answers (almost) one class on validation or is no better than the majority class."""

    collapsed: bool = False
    reasons: list[str] = field(default_factory=list)
    top_class_share: float | None = None
    majority_macro_f1: float | None = None


# ---- one model ----------------------------------------------------------------------------------------------------
@dataclass
class ModelResult(JsonRecord):
    """A model's entry in ``models``: how it was made, its scores, calibration and cost.

    ``extra`` holds its route's own facts (``importance``, ``ablation_of``, ``tfidf_search``, …).
    """

    route: str | None = None
    """The :class:`~distilora.routes.RouteKind` value."""
    description: str | None = None
    layers: list[int] | None = None
    """The teacher layers kept (None: all of them, or no encoder)."""
    num_layers: int | None = None
    """Encoder depth; 0 for a model without an encoder (TF-IDF, majority)."""
    metrics: dict[str, SplitMetrics] = field(default_factory=dict)
    """Per split, at the argmax."""
    intervals: dict[str, MetricIntervals] = field(default_factory=dict)
    metrics_at_threshold: dict[str, SplitMetrics] | None = None
    calibration: CalibrationSummary | None = None
    collapse: CollapseCheck | None = None
    train_loss: float | None = None
    train_loss_mean: float | None = None
    params: int | None = None
    trainable_params: int | None = None
    size_mb: float | None = None
    train_seconds: float | None = None
    precision: str | None = None
    world_size: int | None = None
    eval_seconds: float | None = None
    path: str | None = None
    training: dict[str, Any] | None = None
    """The training settings (:class:`~distilora.config.TrainConfig` as a dict); None: not trained step by step."""
    history: list[dict[str, Any]] = field(default_factory=list)
    """The Trainer's log, one dict per logging step or evaluation."""
    adapter_size_mb: float | None = field(default=None, metadata=OMIT_NONE)
    robustness: Robustness | None = field(default=None, metadata=OMIT_NONE)
    """Label consistency and scores under spelling perturbations; None: a run older than the measure."""
    seed: int | None = field(default=None, metadata=OMIT_NONE)
    """Set on the entry of an extra seed's model (its model card's); the main entry has the run's seed."""

    @property
    def details(self) -> dict[str, Any]:
        """The route's own facts and any other key this schema does not declare."""
        return self.extra

    @property
    def importance(self) -> dict[str, Any] | None:
        """The greedy layer elimination of an importance-chosen student."""
        return self.extra.get("importance")

    @property
    def ablation_of(self) -> str | None:
        """The model this one is the labels-only ablation of."""
        return self.extra.get("ablation_of")

    @property
    def is_text_baseline(self) -> bool:
        """TF-IDF and majority models have no encoder (``num_layers`` 0): they are not transformers models."""
        return self.num_layers == 0

    @property
    def collapsed(self) -> bool | None:
        """The collapse check's verdict; None when the model had none (the majority baseline)."""
        return self.collapse.collapsed if self.collapse is not None else None

    def split_metrics(self, split: str) -> SplitMetrics | None:
        return self.metrics.get(split)

    def with_seed_run(self, run: SeedRun) -> ModelResult:
        """This entry with an extra seed's scores and calibration (its model card's); it has no collapse check."""
        return dataclasses.replace(self, seed=run.seed, metrics=run.metrics, intervals=run.intervals or {},
                                   metrics_at_threshold=run.metrics_at_threshold, calibration=run.calibration,
                                   collapse=None, robustness=None)


@dataclass
class SeedRun(JsonRecord):
    """One seed's scores of a model (``seed_runs``); the main seed's has its metrics only."""

    seed: int | None = None
    metrics: dict[str, SplitMetrics] = field(default_factory=dict)
    intervals: dict[str, MetricIntervals] | None = field(default=None, metadata=OMIT_NONE)
    metrics_at_threshold: dict[str, SplitMetrics] | None = field(default=None, metadata=OMIT_NONE)
    calibration: CalibrationSummary | None = field(default=None, metadata=OMIT_NONE)


# ---- the run ------------------------------------------------------------------------------------------------------
@dataclass
class SplitReport(JsonRecord):
    """What reading one split kept and dropped."""

    rows: int | None = None
    rows_read: int | None = field(default=None, metadata=OMIT_NONE)
    dropped: int = 0
    reasons: dict[str, int] = field(default_factory=dict)
    note: str | None = field(default=None, metadata=OMIT_NONE)
    """How the split was made, when it was not read as is (validation carved out of train)."""
    sampled_from: int | None = field(default=None, metadata=OMIT_NONE)
    """The rows before a ``--max-rows`` sample."""
    label_counts: list[int] | None = field(default=None, metadata=OMIT_NONE)
    """Kept rows per class; for a multi-label task, the rows each label is on in."""
    warnings: list[str] | None = field(default=None, metadata=OMIT_NONE)
    augmented_rows: int | None = field(default=None, metadata=OMIT_NONE)
    """Perturbed copies added to the split (``--augment``; train only), counted in ``label_counts``."""


@dataclass
class TransferFile(JsonRecord):
    """One file of transfer texts, as read."""

    path: str
    sha256: str
    """The hash of the file's bytes."""
    rows_read: int


@dataclass
class TransferReport(JsonRecord):
    """The unlabelled texts the teacher labelled for the distillation routes, and what cleaning removed.

    Texts are compared after whitespace and case normalisation; a text removed for one reason is not counted again.
    """

    files: list[TransferFile] = field(default_factory=list)
    text_column: str | None = None
    rows_read: int = 0
    blank: int = 0
    duplicates_of_evaluation: int = 0
    """Texts equal to a validation or test text: never trained on what is evaluated."""
    duplicates_of_train: int = 0
    """Texts equal to a labelled training text (it is trained on with its label already)."""
    duplicates_within: int = 0
    """Repeats of an earlier transfer text."""
    over_max: int = 0
    """Left out by the ``--transfer-max`` sample."""
    kept: int = 0
    augmented: int = 0
    """Perturbed copies of kept texts added by ``--augment`` (the teacher labels them too)."""
    weight: float = 1.0
    """The weight of a transfer row's teacher terms against a labelled row's."""
    fingerprint: str | None = None
    """Hash of the kept texts, in order: part of the distillation stages' fingerprints and of the teacher-target
    cache's key."""
    models: list[str] = field(default_factory=list)
    """The models trained on them (the distillation routes)."""

    def removed(self) -> dict[str, int]:
        """The nonzero counts of texts removed, by reason."""
        counts = {"blank": self.blank, "duplicates of validation / test": self.duplicates_of_evaluation,
                  "duplicates of train": self.duplicates_of_train, "repeated": self.duplicates_within,
                  "over --transfer-max": self.over_max}
        return {reason: n for reason, n in counts.items() if n}

    def summary(self) -> str:
        """One line: how many, from where, what was removed."""
        removed = "; ".join(f"{n:,} {reason}" for reason, n in self.removed().items()) or "none"
        files = ", ".join(f"{Path(f.path).name} (sha256 {f.sha256[:12]})" for f in self.files)
        copies = f" plus {self.augmented:,} perturbed copies (--augment)," if self.augmented else ""
        return (f"{self.kept:,} of {self.rows_read:,} unlabelled texts from {files},{copies} labelled by the "
                f"fine-tuned teacher (teacher terms only, weight {self.weight:g}); removed: {removed}")


@dataclass
class ModelSpeed(JsonRecord):
    latency_ms: float
    """Median single-text latency."""
    latency_ms_p90: float | None = None
    throughput: float | None = None
    """Texts per second for one batch of all the timing texts."""
    batch_size: int | None = None
    single_texts: int | None = None
    rounds: int | None = None
    device: str | None = None
    precision: str | None = None


@dataclass
class SpeedReport(JsonRecord):
    """Inference speed measured during the run, every model on the same texts."""

    models: dict[str, ModelSpeed] = field(default_factory=dict)
    texts: str | None = None
    precision: str | None = None
    machine: str | None = None


@dataclass
class PrecisionReport(JsonRecord):
    """Precision asked and used, on what device, and the hardware's bf16 support."""

    requested: str | None = None
    resolved: str | None = None
    device: str | None = None
    native_bf16: bool | None = None
    cpu: str | None = None
    cpu_flags: list[str] = field(default_factory=list)


# ---- the report's statistics ---------------------------------------------------------------------------------------
@dataclass
class StatisticsMethod(JsonRecord):
    split: str
    n_items: int
    confidence: float
    bootstrap: str
    resamples: int
    seed: int
    paired_test: str
    multiple_comparisons: str
    alpha: float


@dataclass
class McNemar(JsonRecord):
    """Items only A / only B gets right, McNemar's exact p and its Holm adjustment."""

    a_only_correct: int
    b_only_correct: int
    p_value: float
    p_holm: float | None = field(default=None, metadata=OMIT_NONE)
    label: str | None = field(default=None, metadata=OMIT_NONE)
    """Multi-label only, in a comparison's ``per_label``: the label whose decisions were paired."""

    def flipped(self) -> McNemar:
        return dataclasses.replace(self, a_only_correct=self.b_only_correct, b_only_correct=self.a_only_correct)


@dataclass
class Comparison(JsonRecord):
    """Two models paired on the same test items: differences ``a − b`` with CIs, and McNemar's test."""

    a: str
    b: str
    kind: str
    macro_f1_difference: Interval
    accuracy_difference: Interval
    difference_significant: bool
    mcnemar: McNemar
    mcnemar_significant: bool | None = field(default=None, metadata=OMIT_NONE)
    per_label: list[McNemar] | None = field(default=None, metadata=OMIT_NONE)
    """Multi-label only: McNemar on each label's decisions (``mcnemar`` pairs items with every label right); their
    ``p_holm`` adjusts over every label test of every comparison."""

    def flipped(self) -> Comparison:
        """The same comparison as ``b − a``."""
        d = self.macro_f1_difference
        return dataclasses.replace(
            self, a=self.b, b=self.a,
            macro_f1_difference=Interval(-d.estimate, -d.high, -d.low),
            accuracy_difference=Interval(-self.accuracy_difference.estimate, -self.accuracy_difference.high,
                                         -self.accuracy_difference.low),
            mcnemar=self.mcnemar.flipped(),
            per_label=[test.flipped() for test in self.per_label] if self.per_label is not None else None)


@dataclass
class MetricSummary(JsonRecord):
    """Mean, sample std (ddof 1) and the values of a metric over seeds."""

    mean: float
    std: float
    values: list[float] = field(default_factory=list)


@dataclass
class SeedSummary(JsonRecord):
    n_seeds: int = 0
    seeds: list[int | None] = field(default_factory=list)
    validation: dict[str, MetricSummary] = field(default_factory=dict)
    test: dict[str, MetricSummary] = field(default_factory=dict)

    def of(self, split: str, metric: str) -> MetricSummary | None:
        return {"validation": self.validation, "test": self.test}.get(split, {}).get(metric)


@dataclass
class BaselineSummary(JsonRecord):
    """The majority-class baseline the report compares with."""

    class_id: int
    label: str
    counts: list[int]
    source: str
    metrics: dict[str, SplitMetrics] = field(default_factory=dict)


@dataclass
class RunStatistics(JsonRecord):
    """The report's ``statistics``: test intervals per model, paired comparisons, seed summaries, the baseline."""

    method: StatisticsMethod
    intervals: dict[str, MetricIntervals] = field(default_factory=dict)
    comparisons: list[Comparison] = field(default_factory=list)
    seeds: dict[str, SeedSummary] = field(default_factory=dict)
    baseline: BaselineSummary | None = field(default=None, metadata=OMIT_NONE)


@dataclass
class RunResults(JsonRecord):
    """The whole of results.json."""

    dataset: str | None = None
    teacher: str | None = None
    teacher_checkpoint: str | None = None
    labels: list[str] = field(default_factory=list)
    multi_label: bool | None = field(default=None, metadata=OMIT_NONE)
    """True for a multi-label task (``labels`` are independent 0/1 labels); absent for single-label runs."""
    data_report: dict[str, SplitReport] = field(default_factory=dict)
    data_fingerprint: str | None = None
    seed: int | None = None
    precision: PrecisionReport | None = None
    world_size: int | None = None
    augmentation: Augmentation | None = field(default=None, metadata=OMIT_NONE)
    models: dict[str, ModelResult] = field(default_factory=dict)
    speed: SpeedReport | None = None
    stage_seconds: dict[str, float] = field(default_factory=dict)
    reused_stages: list[str] = field(default_factory=list)
    config: dict[str, Any] = field(default_factory=dict)
    """The run's :class:`~distilora.config.ExperimentConfig` as a dict."""
    versions: dict[str, str] = field(default_factory=dict)
    created: str | None = None
    seed_runs: dict[str, list[SeedRun]] | None = field(default=None, metadata=OMIT_NONE)
    statistics: RunStatistics | None = field(default=None, metadata=OMIT_NONE)
    transfer: TransferReport | None = field(default=None, metadata=OMIT_NONE)
    """The transfer texts of the distillation routes (``--transfer-texts``); absent without them."""

    @classmethod
    def of(cls, results: RunResults | Mapping[str, Any]) -> RunResults:
        """``results`` as the record (read from a dict as results.json holds it)."""
        return results if isinstance(results, RunResults) else cls.from_json(results, "results.json")

    def names_of_route(self, kind: str) -> list[str]:
        """The models made by route kind ``kind`` (a RouteKind value), in the run's order."""
        return [name for name, entry in self.models.items() if entry.route == kind]

    def speed_of(self, name: str) -> ModelSpeed | None:
        return self.speed.models.get(name) if self.speed is not None else None


@dataclass
class TrialPoint(JsonRecord):
    """One counted trial of a study, for the trial-history plot."""

    number: int
    state: str
    """``complete``, ``pruned`` or ``fail``."""
    macro_f1: float | None = None
    """Validation macro-F1 at the trial's best evaluation (complete), or its last reported one (pruned)."""
    default: bool = False
    """The route's default settings (the enqueued first trial)."""


@dataclass
class TunedRoute(JsonRecord):
    """One route's study at its budget (``<run>/tune.json``): the counts, the default and the best trial."""

    route: str
    study: str
    trials: int
    """Trials counted against the budget (complete, pruned and failed, by every process sharing the study)."""
    complete: int
    pruned: int
    failed: int
    seconds: float
    """Wall clock of the last ``tune`` invocation on this route."""
    default_trial: int | None = None
    default_macro_f1: float | None = None
    """Validation macro-F1 of the route's default settings (the study's first trial)."""
    best_trial: int | None = None
    best_macro_f1: float | None = None
    best_settings: dict[str, Any] = field(default_factory=dict)
    """The best trial's dotted settings (``train.learning_rate``, ``distil.temperature``, …)."""
    model_dir: str | None = None
    """The best trial's kept model (``<run>/.tune/<route>/trial-<n>``)."""
    history: list[TrialPoint] = field(default_factory=list)
    """Every counted trial, in order."""
    importances: dict[str, float] = field(default_factory=dict)
    """``optuna.importance`` (fANOVA, seeded) of each searched parameter for validation macro-F1, summing to 1;
    empty with fewer than two finished trials."""
    importance_note: str | None = None
    """Why there are no importances, when there are none."""
