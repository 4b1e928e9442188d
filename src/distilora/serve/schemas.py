"""Pydantic models of the JSON API: what a request may hold and what every response (errors too) looks like."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field

from distilora.checks.bias_records import BiasReport
from distilora.config import MAX_TEXT_CHARS, MAX_TEXTS
from distilora.serve.parsing import VISIBLE

# The pattern is the server's own test of a visible character, so schema-valid texts are the accepted ones.
NOT_BLANK = VISIBLE


Text = Annotated[
    str,
    Field(max_length=MAX_TEXT_CHARS, json_schema_extra={"pattern": NOT_BLANK},
          description=f"A text to classify: at most {MAX_TEXT_CHARS:,} characters, with at least one visible "
                      "character (not only white space, control or zero-width characters)."),
]


class ClassifyRequest(BaseModel):
    """Texts to classify and, optionally, which loaded model classifies them."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={"examples": [{"texts": ["Have a lovely day!", "You people are vermin."], "model": "odd"}]},
    )

    texts: list[Text] = Field(min_length=1, max_length=MAX_TEXTS,
                              description=f"1 to {MAX_TEXTS} texts, classified in one batch.")
    model: str | None = Field(None, description="A loaded model's name (see GET /api/v1/models); "
                                                "default: the best distilled student by validation macro-F1.")


class ClassifyResult(BaseModel):
    """One text's answer."""

    label: str = Field(description="The predicted label (a multi-label model's: its most probable label).")
    scores: dict[str, float] = Field(description="Every label's probability; they sum to 1 (a multi-label model's: "
                                                 "each label's own sigmoid probability, independent of the others).")
    labels: list[str] | None = Field(
        None, exclude_if=lambda value: value is None,
        description="Multi-label models only: the labels that are on, each at or above its own threshold "
                    "(`decision.thresholds`); empty when none is. Absent for single-label models.")
    truncated: bool = Field(description="True when part of the text was not read (only under the truncate policy; "
                                        "the service reads long texts in overlapping windows).")
    windows: int = Field(default=1, ge=1, description="How many overlapping token windows of the text the model "
                                                      "read: more than 1 for a text longer than its maximum length, "
                                                      "scored by its most positive window.")


class Decision(BaseModel):
    """How a model's labels are chosen: a threshold tuned on validation (binary tasks; a threshold per label for
    multi-label models), or the argmax."""

    rule: Literal["threshold", "argmax"] = Field(
        description="threshold: positive_label when its score is at least `threshold` (a multi-label model: every "
                    "label whose score is at least its own threshold in `thresholds`); argmax: the top score.")
    threshold: float | None = Field(None, description="The applied threshold on the positive label's score; "
                                                      "null with the argmax.")
    positive_label: str | None = Field(None, description="The label the threshold is for; null with the argmax.")
    policy: str = Field(description="How the threshold was chosen on validation: max-macro-f1, target-precision, "
                                    "target-recall; argmax when there is none; default: 0.5 for every label of an "
                                    "uncalibrated multi-label model.")
    target: float | None = Field(None, description="The precision or recall the policy had to reach, if any.")
    temperature: float | None = Field(None, description="Scores are softmax(logits / temperature), fitted on "
                                                        "validation; null: the raw softmax (not calibrated). A "
                                                        "multi-label model's: the geometric mean of `temperatures`.")
    thresholds: dict[str, float] | None = Field(
        None, exclude_if=lambda value: value is None,
        description="Multi-label models only: each label's threshold (tuned on validation, or 0.5 uncalibrated).")
    temperatures: dict[str, float] | None = Field(
        None, exclude_if=lambda value: value is None,
        description="Multi-label models calibrated per label: each label's score is sigmoid(logit / temperature).")
    targets: dict[str, float | None] | None = Field(
        None, exclude_if=lambda value: value is None,
        description="Multi-label models with a precision or recall target: each label's (null: its highest F1).")


class ClassifyResponse(BaseModel):
    """The model used, one result per text (in request order), how the labels were decided, and the model's time."""

    model: str
    results: list[ClassifyResult]
    decision: Decision = Field(description="Which threshold (or the argmax) chose the labels. A plain transformers "
                                           "pipeline on the same model gives the raw softmax and the argmax.")
    elapsed_ms: float = Field(description="Milliseconds the model took for the whole batch.")


class Metrics(BaseModel):
    """A model's scores on one split (absent numbers are null)."""

    n: int | None = None
    loss: float | None = None
    accuracy: float | None = None
    macro_f1: float | None = None
    precision: float | None = None
    recall: float | None = None
    f1_per_class: list[float | None] | None = None
    confusion_matrix: list[list[int]] | None = None
    micro_f1: float | None = Field(None, exclude_if=lambda value: value is None,
                                   description="Multi-label models only: F1 over every (text, label) decision.")
    hamming_loss: float | None = Field(None, exclude_if=lambda value: value is None,
                                       description="Multi-label models only: the share of wrong (text, label) "
                                                   "decisions.")


class ModelInfo(BaseModel):
    """One loaded model: how it was made, its size and its scores."""

    name: str
    route: str | None = Field(None, description="fine-tune (the teacher), distil (a distilled student), lora, "
                                                "hybrid (LoRA trained by distillation) or baseline.")
    description: str | None = Field(None, description="One line on how the model was made.")
    collapsed: bool | None = Field(None, description="True when the run's collapse check flagged the model (it "
                                                     "predicts nearly one class); null: not checked.")
    layers: list[int] | None = Field(None, description="Teacher layers a student kept (1-based); null: all.")
    num_layers: int | None = None
    labels: list[str]
    multi_label: bool | None = Field(None, exclude_if=lambda value: value is None,
                                     description="True for a multi-label model (a sigmoid and a threshold per "
                                                 "label); absent for single-label models.")
    max_length: int = Field(description="Tokens the model reads; longer texts are truncated.")
    params: int | None = None
    trainable_params: int | None = None
    size_mb: float | None = None
    adapter_size_mb: float | None = None
    backend: str | None = Field(None, description="What runs the model: pytorch, onnxruntime (an ONNX export: "
                                                  "distilora serve --backend onnx) or numpy (TF-IDF, majority).")
    quantization: str | None = Field(None, description="int8 for an int8 ONNX export; null: not quantized.")
    precision: str | None = Field(None, description="PyTorch inference precision: fp32, or bf16 (autocast; "
                                                    "distilora serve --precision); null for onnxruntime and numpy.")
    parity: dict[str, float] | None = Field(None, description="An export's label agreement with its PyTorch model "
                                                              "per split (parity.json); null: not an export.")
    decision_parity: dict[str, float] | None = Field(
        None, description="The same agreement on the labels as served (its `decision`: temperature and threshold) "
                          "per split; the export passed its gate on both.")
    stale: bool | None = Field(None, description="True when the run's model was retrained or its calibration "
                                                 "refitted after the export was made: the export still serves the "
                                                 "decision it was gated at. Null: not an export.")
    stale_reason: str | None = Field(None, description="Why the export is stale and what it serves instead.")
    metrics: dict[str, Metrics] = Field(default_factory=dict, description="validation and test scores (argmax).")
    decision: Decision = Field(description="How its labels are chosen (see POST /api/v1/classify).")
    metrics_at_threshold: dict[str, Metrics] | None = Field(
        None, description="validation and test scores at the tuned threshold (an export's own, at its decision); "
                          "null with the argmax.")


class ModelsResponse(BaseModel):
    """Every loaded model, the default one, and what run they come from."""

    default_model: str
    labels: list[str]
    dataset: str | None = None
    models: list[ModelInfo]


class CheckEntry(BaseModel):
    """One check as its checks/NAME.json holds it (less local paths); its other keys pass through unchanged."""

    model_config = ConfigDict(extra="allow")

    name: str
    bias: BiasReport | None = Field(
        None, description="Bias metrics by identity (null when the suite has no identity column or the run is not "
                          "binary): per model the overall AUC, per identity the subgroup, BPSN and BNSP AUC with n "
                          "and a bootstrap interval, the power means and the final bias metric; per compressed "
                          "model the change of each against the teacher (paired bootstrap interval and p).")


class ChecksResponse(BaseModel):
    """The run's behavioural checks (``distilora check``), as their checks/NAME.json hold them, by name."""

    checks: list[CheckEntry] = Field(
        default_factory=list,
        description="One entry per check: suite, label mapping, overall scores, and per grouping column the "
                    "accuracy of every model per group (Wilson intervals) and what compression broke against the "
                    "teacher, and the bias metrics by identity. Empty when the run has no checks yet.")


class Health(BaseModel):
    """Readiness: ``ok`` while the models answer; ``unavailable`` (HTTP 503) with the reason otherwise."""

    status: Literal["ok", "unavailable"]
    models: list[str]
    reason: str | None = Field(None, description="Why the service cannot classify now (null when ok): the model "
                                                 "process is restarting, not answering, or given up after dying "
                                                 "repeatedly (restart the server).")


class ErrorDetail(BaseModel):
    """One problem with the request: where (e.g. ``texts[2]``) and what."""

    field: str
    message: str


class ErrorResponse(BaseModel):
    """Every error response: the HTTP status, a short code, a readable message, and per-field details."""

    status: int
    error: str
    message: str
    details: list[ErrorDetail] = Field(default_factory=list)
