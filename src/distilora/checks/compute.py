"""What a check reports, from predictions alone: group accuracies with Wilson intervals, overall accuracy and
macro-F1 (over all the run's labels), and per model against the teacher the groups whose accuracy fell (McNemar per
group, Holm across groups).

Nothing here loads a model: :func:`summarise` takes the suite and each model's predicted class ids.
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
        if case_group == group and teacher_pred[i] == suite.gold[i] != model_pred[i]:
            out.append({"text": suite.texts[i], "gold": labels[suite.gold[i]], "teacher": labels[teacher_pred[i]],
                        "model": labels[model_pred[i]]})
    return out


def _overall(gold: np.ndarray, predicted: np.ndarray, num_labels: int) -> dict:
    """Accuracy and macro-F1 over every label of the run, not only the ones a model happens to predict: one scale for
    all the models."""
    return {"n": len(gold), "accuracy": float(accuracy_score(gold, predicted)),
            "macro_f1": float(f1_score(gold, predicted, labels=list(range(num_labels)), average="macro",
                                       zero_division=0))}


def _absent_classes_note(gold: np.ndarray, labels: Sequence[str]) -> list[str]:
    absent = [label for i, label in enumerate(labels) if not (gold == i).any()]
    if not absent or not len(gold):
        return []
    return [f"no case of {', '.join(map(repr, absent))} in the suite: that class's F1 is 0 for every model, so "
            f"macro-F1 is at most {1 - len(absent) / len(labels):.2f} here"]


def summarise(suite: Suite, predictions: Mapping[str, Sequence[int]], labels: Sequence[str], teacher: str | None,
              config: CheckConfig | None = None) -> dict:
    """The check's JSON body (less its name and timestamps) from the suite and each model's predicted class ids."""
    config = config or CheckConfig()
    gold = np.asarray(suite.gold, dtype=np.int64)
    preds = {name: np.asarray(p, dtype=np.int64) for name, p in predictions.items()}
    for name, p in preds.items():
        if p.shape != gold.shape:
            raise ValueError(f"{name}: {len(p)} predictions for {len(gold)} cases")
    correct = {name: p == gold for name, p in preds.items()}
    overall = {name: _overall(gold, p, len(labels)) for name, p in preds.items()}
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
        "gold_counts": {labels[i]: int((gold == i).sum()) for i in range(len(labels))},
        "threshold": "argmax",
        "threshold_note": "every model predicts its argmax class, as results.json's metrics count it; the thresholds "
                          "tuned on validation (calibration.json) are not applied here",
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
