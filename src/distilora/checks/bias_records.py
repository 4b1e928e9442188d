"""The records of a check's bias block (``checks/NAME.json``'s ``bias``), without the computation's libraries, so
the service can declare them in its API schema."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field


@dataclass(frozen=True)
class AucEstimate:
    """One AUC (``metric`` of ``identity``; overall: identity None) over ``n`` cases, with its bootstrap interval."""

    metric: str
    identity: str | None
    n: int
    positives: int
    negatives: int
    auc: float
    low: float | None
    high: float | None
    resamples: int
    """Resamples the interval rests on (those where the cases held both classes)."""


@dataclass(frozen=True)
class IdentityCount:
    """The cases mentioning an identity, and how many of them are positive and negative."""

    identity: str
    n: int
    positives: int
    negatives: int


@dataclass(frozen=True)
class Skipped:
    """A metric left undefined for an identity: its cases hold one class only."""

    identity: str
    metric: str
    reason: str


@dataclass(frozen=True)
class Estimate:
    """A value with its bootstrap interval (None when no resample defined it)."""

    estimate: float | None
    low: float | None
    high: float | None


@dataclass(frozen=True)
class ModelBias:
    """One model's overall AUC, per-identity AUCs, power means and final bias metric."""

    overall: AucEstimate | None
    aucs: list[AucEstimate]
    power_means: dict[str, float | None]
    final: Estimate


@dataclass(frozen=True)
class BiasChange:
    """A model's AUC minus the teacher's for one identity and metric, with the paired bootstrap interval and p."""

    identity: str
    metric: str
    teacher_auc: float
    model_auc: float
    change: float
    low: float | None
    high: float | None
    p_value: float
    p_holm: float = 1.0


@dataclass(frozen=True)
class ModelBiasChange:
    """A compressed model against the teacher: the final metric's change and every AUC's, largest fall first."""

    final: Estimate
    rows: list[BiasChange]


@dataclass
class BiasReport:
    """The check's ``bias`` block."""

    identity_column: str
    positive_label: str
    identities: list[IdentityCount]
    """In first-appearance order."""
    power: float
    resamples: int
    seed: int
    confidence: float
    interval: str
    models: dict[str, ModelBias] = field(default_factory=dict)
    skipped: list[Skipped] = field(default_factory=list)
    changes: dict[str, ModelBiasChange] = field(default_factory=dict)

    def to_dict(self) -> dict:
        return asdict(self)
