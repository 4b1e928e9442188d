"""What a check reports, from predictions alone: group accuracies with Wilson intervals, overall accuracy and
macro-F1 (over all the run's labels), and per model against the teacher the groups whose accuracy fell (McNemar per
group, Holm across groups).

Nothing here loads a model: :func:`summarise` takes the suite and each model's predicted class ids.

A multi-label suite (0/1 gold rows) counts a case right when every label is right; overall, macro-F1 is over the
run's labels and each label's F1 is given (``per_label_f1``).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
from sklearn.metrics import accuracy_score, f1_score

from distilora.checks.suite import Suite
from distilora.config import CheckConfig
from distilora.evaluation.metrics import wilson
from distilora.evaluation.statistics import holm, mcnemar_exact
from distilora.label_space import decided_names, is_multi_label


@dataclass(frozen=True)
class GroupAccuracy:
    """``correct`` of ``n`` cases right, and the Wilson interval of that share."""

    group: str
    n: int
    correct: int
    accuracy: float | None
    low: float | None
    high: float | None

    def to_dict(self) -> dict:
        return {"group": self.group, "n": self.n, "correct": self.correct, "accuracy": self.accuracy,
                "low": self.low, "high": self.high}


def group_order(groups: Sequence[str]) -> list[str]:
    """Groups in the order they first appear in the suite."""
    return list(dict.fromkeys(groups))


def group_accuracies(correct: Sequence[bool], groups: Sequence[str], confidence: float = 0.95) -> list[GroupAccuracy]:
    """Accuracy of each group (first-appearance order) with its Wilson interval."""
    correct_arr, groups_arr = np.asarray(correct, dtype=bool), np.asarray(groups, dtype=object)
    out = []
    for group in group_order(groups):
        mask = groups_arr == group
        n, k = int(mask.sum()), int(correct_arr[mask].sum())
        low, high = wilson(k, n, confidence)
        out.append(GroupAccuracy(group, n, k, k / n, low, high))
    return out


def what_broke(teacher_correct: Sequence[bool], model_correct: Sequence[bool], groups: Sequence[str],
               alpha: float = 0.05) -> list[dict]:
    """Per group: accuracy change from the teacher, the discordant pairs and McNemar's exact p (Holm across groups).

    Rows are sorted by the change, largest fall first (ties: smaller Holm p first, then suite order).
    """
    t, m, g = np.asarray(teacher_correct, bool), np.asarray(model_correct, bool), np.asarray(groups, dtype=object)
    rows = []
    for group in group_order(groups):
        mask = g == group
        test = mcnemar_exact(t[mask], m[mask])
        rows.append({"group": group, "n": int(mask.sum()), "teacher_accuracy": float(t[mask].mean()),
                     "model_accuracy": float(m[mask].mean()),
                     "change": float(m[mask].mean() - t[mask].mean()),
                     "teacher_only_correct": test.a_only_correct, "model_only_correct": test.b_only_correct,
                     "p_value": test.p_value})
    for row, adjusted in zip(rows, holm([r["p_value"] for r in rows]), strict=True):
        row["p_holm"] = adjusted
        row["significant"] = adjusted < alpha
    order = {r["group"]: i for i, r in enumerate(rows)}
    return sorted(rows, key=lambda r: (r["change"], r["p_holm"], order[r["group"]]))


def _examples(suite: Suite, column: str, group: str, teacher_pred: np.ndarray, model_pred: np.ndarray,
              labels: Sequence[str], limit: int) -> list[dict]:
    """Up to ``limit`` cases of ``group`` the teacher got right and the model got wrong (suite order)."""
    out = []
    for i, case_group in enumerate(suite.groups[column]):
        if len(out) >= limit:
            break
        gold = suite.gold[i]
        if case_group == group and np.array_equal(teacher_pred[i], gold) and not np.array_equal(model_pred[i], gold):
            out.append({"text": suite.texts[i], "gold": _named(gold, labels),
                        "teacher": _named(teacher_pred[i], labels), "model": _named(model_pred[i], labels)})
    return out


def _named(answer: int | Sequence[int], labels: Sequence[str]) -> str:
    """A class id's label, or a multi-label 0/1 row's labels that are on (``(none)`` when none is)."""
    if np.ndim(answer):
        return ", ".join(decided_names(answer, labels)) or "(none)"
    return labels[int(answer)]


def _overall(gold: np.ndarray, predicted: np.ndarray, labels: Sequence[str]) -> dict:
    """Accuracy and macro-F1 over every label of the run, not only the ones a model happens to predict: one scale for
    all the models (multi-label: subset accuracy, and each label's F1)."""
    ids = list(range(len(labels)))
    overall = {"n": len(gold), "accuracy": float(accuracy_score(gold, predicted)),
               "macro_f1": float(f1_score(gold, predicted, labels=ids, average="macro", zero_division=0))}
    if is_multi_label(gold):
        each = f1_score(gold, predicted, labels=ids, average=None, zero_division=0)
        overall["per_label_f1"] = {label: float(f1) for label, f1 in zip(labels, each, strict=True)}
    return overall


def _gold_counts(gold: np.ndarray, labels: Sequence[str]) -> dict[str, int]:
    """Cases per gold class (multi-label: the cases each label is on in)."""
    if is_multi_label(gold):
        return {label: int(gold[:, j].sum()) for j, label in enumerate(labels)}
    return {labels[i]: int((gold == i).sum()) for i in range(len(labels))}


def _absent_classes_note(gold: np.ndarray, labels: Sequence[str]) -> list[str]:
    absent = [label for label, count in _gold_counts(gold, labels).items() if not count]
    if not absent or not len(gold):
        return []
    what, kind = ("case with", "label") if is_multi_label(gold) else ("case of", "class")
    return [f"no {what} {', '.join(map(repr, absent))} in the suite: that {kind}'s F1 is 0 for every model, so "
            f"macro-F1 is at most {1 - len(absent) / len(labels):.2f} here"]


def _decision(gold: np.ndarray) -> dict[str, str]:
    """How the check decides each model's labels, in words."""
    if is_multi_label(gold):
        return {"threshold": "0.5 per label",
                "threshold_note": "every model turns a label on when its probability is at least 0.5, as "
                                  "results.json's metrics count it; the per-label thresholds tuned on validation "
                                  "(calibration.json) are not applied here"}
    return {"threshold": "argmax",
            "threshold_note": "every model predicts its argmax class, as results.json's metrics count it; the "
                              "thresholds tuned on validation (calibration.json) are not applied here"}


def summarise(suite: Suite, predictions: Mapping[str, Sequence[int]], labels: Sequence[str], teacher: str | None,
              config: CheckConfig | None = None) -> dict:
    """The check's JSON body (less its name and timestamps) from the suite and each model's predicted class ids."""
    config = config or CheckConfig()
    gold = np.asarray(suite.gold, dtype=np.int64)
    preds = {name: np.asarray(p, dtype=np.int64) for name, p in predictions.items()}
    for name, p in preds.items():
        if p.shape != gold.shape:
            raise ValueError(f"{name}: {len(p)} predictions for {len(gold)} cases")
    correct = {name: (p == gold).all(axis=1) if is_multi_label(gold) else p == gold for name, p in preds.items()}
    overall = {name: _overall(gold, p, labels) for name, p in preds.items()}
    notes = list(suite.notes) + _absent_classes_note(gold, labels)
    if teacher is None or teacher not in preds:
        notes.append("no teacher (route fine-tune) among the models: nothing to compare against")
        teacher = None
    groupings = [_grouping(suite, column, groups, preds, correct, teacher, labels, config)
                 for column, groups in suite.groups.items()]
    return {
        "suite": {"file": str(suite.file), "format": suite.format, "rows": suite.rows, "used": len(gold),
                  "dropped_blank_text": suite.dropped_total, "text_column": suite.text_column,
                  "label_column": suite.label_column, "group_columns": suite.group_columns},
        "labels": list(labels),
        "label_mapping": suite.label_mapping,
        "label_mapping_source": suite.mapping_source,
        "gold_counts": _gold_counts(gold, labels),
        **_decision(gold),
        "interval": f"{config.confidence:.0%} Wilson score interval",
        "confidence": config.confidence,
        "paired_test": "McNemar's exact test per group, Holm-adjusted across the groups of one grouping",
        "alpha": config.alpha,
        "teacher": teacher,
        "models": list(preds),
        "overall": overall,
        "groupings": groupings,
        "notes": notes,
    }


def _grouping(suite: Suite, column: str, groups: Sequence[str], preds: Mapping[str, np.ndarray],
              correct: Mapping[str, np.ndarray], teacher: str | None, labels: Sequence[str],
              config: CheckConfig) -> dict:
    """One group column's rows: accuracy per group and model, and what each model broke against the teacher."""
    dropped = suite.dropped.get(column, {})
    counts = {g: int(sum(1 for x in groups if x == g)) for g in group_order(groups)}
    # A group whose every case was dropped still gets a row (n = 0), so nothing vanishes from the tables.
    empty = [g for g in dropped if g not in counts]
    grouping: dict = {
        "column": column,
        "groups": [{"group": g, "n": n, "dropped": int(dropped.get(g, 0))} for g, n in counts.items()]
        + [{"group": g, "n": 0, "dropped": int(dropped[g])} for g in empty],
        "accuracy": {name: [a.to_dict() for a in group_accuracies(c, groups, config.confidence)]
                     + [GroupAccuracy(g, 0, 0, None, None, None).to_dict() for g in empty]
                     for name, c in correct.items()},
        "broke": {},
    }
    if teacher is None:
        return grouping
    for name in preds:
        if name == teacher:
            continue
        rows = what_broke(correct[teacher], correct[name], groups, config.alpha)
        for row in [r for r in rows if r["change"] < 0][: config.worst_groups]:
            row["examples"] = _examples(suite, column, row["group"], preds[teacher], preds[name], labels,
                                        config.examples_per_group)
        grouping["broke"][name] = rows
    return grouping
