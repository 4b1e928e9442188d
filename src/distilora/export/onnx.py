"""ONNX export of a sequence classifier and its int8 dynamic quantization.

Export: ``torch.onnx.export(..., dynamo=True)`` (the ``torch.export``-based exporter; the TorchScript exporter
traces transformers' attention-mask code at the example's shape and gave wrong logits for other shapes), with
dynamic batch and sequence axes, the weights inside the one ``model.onnx`` file, inputs named as the tokenizer names
them (``input_ids``, ``attention_mask`` and, for BERT, ``token_type_ids``; int64) and one output, ``logits``.

int8: :func:`onnxruntime.quantization.quantize_dynamic` on the MatMul / Gemm weights (int8, symmetric; per tensor or
per output channel, optionally 7-bit), activations quantized to uint8 per batch at run time. Embeddings, layer norms
and softmax stay fp32.
"""

from __future__ import annotations

import contextlib
import copy
import inspect
import logging
import warnings
from collections.abc import Iterator
from pathlib import Path

import torch
from transformers import PreTrainedModel, PreTrainedTokenizerBase

from distilora.config import INT8_VARIANTS
from distilora.data.encoding import TOKEN_FIELDS
from distilora.inference.onnx import OUTPUT

INT8_OPS = ("MatMul",)
"""Operators whose weights are quantized (the exporter's Gemm heads are quantized through MatMul as well)."""
EXPORTER = "torch.onnx.export (dynamo)"


def input_names(model: PreTrainedModel, tokenizer: PreTrainedTokenizerBase) -> list[str]:
    """The token fields the tokenizer gives and the model takes, in ``TOKEN_FIELDS`` order."""
    given = tokenizer(["a"])
    accepted = inspect.signature(model.forward).parameters
    return [name for name in TOKEN_FIELDS if name in given and name in accepted]


class _Logits(torch.nn.Module):
    """The classifier as a function of its token tensors to its logits (the graph's one output)."""

    def __init__(self, model: PreTrainedModel):
        super().__init__()
        self.model = model

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor | None = None,
                token_type_ids: torch.Tensor | None = None) -> torch.Tensor:
        given = {"attention_mask": attention_mask, "token_type_ids": token_type_ids}
        return self.model(input_ids=input_ids, **{k: v for k, v in given.items() if v is not None}).logits


@contextlib.contextmanager
def _quiet() -> Iterator[None]:
    """Keep the exporter's / quantizer's progress lines and advice out of the user's terminal (errors still raise)."""
    loggers = [logging.getLogger(name) for name in ("", "torch.onnx", "torch.export", "onnxscript")]
    levels = [logger.level for logger in loggers]
    for logger in loggers:
        logger.setLevel(logging.ERROR)
    try:
        with warnings.catch_warnings(), contextlib.redirect_stdout(None):
            warnings.simplefilter("ignore")
            yield
    finally:
        for logger, level in zip(loggers, levels, strict=True):
            logger.setLevel(level)


def export_onnx(model: PreTrainedModel, tokenizer: PreTrainedTokenizerBase, path: Path, opset: int) -> list[str]:
    """Write ``model`` (a CPU fp32 copy, in eval mode) to ``path`` as ONNX; the input names."""
    model = copy.deepcopy(model).cpu().float().eval()
    names = input_names(model, tokenizer)
    example = tokenizer(["an example", "a somewhat longer example text"], padding=True, return_tensors="pt")
    if names[:2] != ["input_ids", "attention_mask"]:
        raise ValueError(f"the tokenizer gives {names}; an input_ids + attention_mask classifier is needed")
    batch, sequence = torch.export.Dim("batch"), torch.export.Dim("sequence")
    with _quiet():
        torch.onnx.export(_Logits(model), tuple(example[name] for name in names), str(path), input_names=names,
                          output_names=[OUTPUT], dynamic_shapes={name: {0: batch, 1: sequence} for name in names},
                          opset_version=opset, dynamo=True, external_data=False, verbose=False)
    return names


def quantize_int8(source: Path, target: Path, variant: str) -> dict:
    """Dynamic int8 quantization of the ONNX model ``source`` into ``target`` with ``INT8_VARIANTS[variant]``;
    the settings used."""
    import onnx
    from onnxruntime.quantization import QuantType, quantize_dynamic

    settings = INT8_VARIANTS[variant]
    model = onnx.load(str(source))
    # The exporter's shape annotations trip onnx's shape inference inside the quantizer; it infers them anew.
    del model.graph.value_info[:]
    weights = matmul_weights(model)
    kept = [name for name, (kind, _) in weights.items() if kind in settings["fp32_matmuls"]]
    with _quiet():
        quantize_dynamic(model, str(target), op_types_to_quantize=list(INT8_OPS), weight_type=QuantType.QInt8,
                         per_channel=settings["per_channel"], reduce_range=settings["reduce_range"],
                         nodes_to_exclude=kept)
    total = sum(size for _, size in weights.values()) or 1
    share = 1 - sum(weights[name][1] for name in kept) / total
    return {"type": "int8", "method": "onnxruntime quantize_dynamic", "variant": variant, **settings,
            "fp32_matmuls": list(settings["fp32_matmuls"]), "op_types": list(INT8_OPS),
            "quantized_weight_share": share, "weights": "int8 symmetric", "activations": "uint8, scale per batch"}


def matmul_weights(model) -> dict[str, tuple[str, int]]:
    """``{node: (kind, weight count)}`` of the MatMuls with a constant 2-D weight ``[in, out]``: ``ffn-input`` when it
    widens (in < out), ``ffn-output`` when it narrows, ``projection`` when square (attention)."""
    initializers = {init.name: tuple(init.dims) for init in model.graph.initializer}
    weights = {}
    for node in model.graph.node:
        dims = initializers.get(node.input[1]) if node.op_type == "MatMul" and len(node.input) > 1 else None
        if dims and len(dims) == 2:
            kind = "ffn-input" if dims[0] < dims[1] else "ffn-output" if dims[0] > dims[1] else "projection"
            weights[node.name] = (kind, dims[0] * dims[1])
    return weights


def choose_int8(tried: dict[str, dict], min_agreement: float) -> str:
    """The variant to keep of ``tried`` (``{name: {agreement, max_abs_dp, quantized_weight_share}}``, in preference
    order): of those with ``agreement >= min_agreement``, the largest quantized share (ties: more agreement, smaller
    max |Δp|, the first listed); when none passes, the most agreement (ties: smaller max |Δp|)."""

    def key(name: str) -> tuple:
        entry = tried[name]
        passes = entry["agreement"] >= min_agreement
        return passes, entry["quantized_weight_share"] if passes else 0.0, entry["agreement"], -entry["max_abs_dp"]

    return max(tried, key=key)  # max keeps the first of equal keys
