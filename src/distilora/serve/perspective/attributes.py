"""Attributes → models: read ``--attribute`` / ``--attribute-file``, plan which models of which runs to load (other
runs' models get registry names of their own), and describe what each attribute serves once they are loaded."""

from __future__ import annotations

import json
import logging
import re
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from distilora.artifacts import MANIFEST, sha256_file
from distilora.config import AttributeSpec, PerspectiveConfig
from distilora.export.files import RunExports
from distilora.results import RunResults
from distilora.run_dir import MODEL_CARD, RunLayout, read_results
from distilora.versions import __version__

logger = logging.getLogger(__name__)

ATTRIBUTE_NAME = re.compile(r"[A-Za-z][A-Za-z0-9_]{0,63}")
SPEC_FORM = ("NAME=RUN:MODEL[:LABEL], e.g. TOXICITY=runs/hate:odd or IDENTITY_ATTACK=runs/identity:odd:attack (a "
             "multi-label model serves one attribute per label: INSULT=runs/mlma:odd:abusive)")


def parse_attribute(text: str) -> AttributeSpec:
    """``TOXICITY=runs/hate:odd[:hate]`` → an :class:`AttributeSpec`; a ValueError naming the expected form."""
    name, equals, spec = text.partition("=")
    parts = spec.split(":")
    if not equals or not ATTRIBUTE_NAME.fullmatch(name) or len(parts) not in (2, 3) or not all(parts):
        raise ValueError(f"--attribute {text!r}: expected {SPEC_FORM} (a run path may not hold ':')")
    return AttributeSpec(name, Path(parts[0]), parts[1], parts[2] if len(parts) == 3 else None)


def read_attribute_file(path: Path) -> list[AttributeSpec]:
    """Attributes from a TOML or JSON file: ``[attributes.TOXICITY]`` with ``run`` (relative to the file's folder;
    omitted: the served run), ``model`` and optionally ``label``."""
    try:
        text = path.read_text(encoding="utf-8")
        data = tomllib.loads(text) if path.suffix.lower() == ".toml" else json.loads(text)
    except (ValueError, UnicodeDecodeError) as error:
        raise ValueError(f"--attribute-file {path}: not valid {path.suffix.lstrip('.') or 'JSON'} ({error})") from None
    table = data.get("attributes") if isinstance(data, dict) else None
    if not isinstance(table, dict) or not table:
        raise ValueError(f"--attribute-file {path}: expected an 'attributes' table, e.g. "
                         "[attributes.TOXICITY] run = \"runs/hate\" model = \"odd\"")
    specs = []
    for name, entry in table.items():
        keys = set(entry) if isinstance(entry, dict) else set()
        if not ATTRIBUTE_NAME.fullmatch(name) or not isinstance(entry, dict) or not keys <= {"run", "model", "label"} \
                or not all(isinstance(entry.get(k, ""), str) for k in keys) or not entry.get("model"):
            raise ValueError(f"--attribute-file {path}: attribute {name!r} needs a 'model' and may have 'run' and "
                             "'label' (strings); names are letters, digits and '_'")
        run = (path.parent / entry["run"]) if entry.get("run") else None
        specs.append(AttributeSpec(name, run, entry["model"], entry.get("label") or None))
    return specs


def perspective_config(attributes: list[str] | None, attribute_file: str | None, **settings: Any) -> PerspectiveConfig:
    """The :class:`PerspectiveConfig` of the command line's options; a ValueError for a repeated attribute."""
    specs = [parse_attribute(text) for text in attributes or ()]
    if attribute_file:
        specs += read_attribute_file(Path(attribute_file))
    names = [spec.name for spec in specs]
    repeated = sorted({name for name in names if names.count(name) > 1})
    if repeated:
        raise ValueError(f"attribute {', '.join(repeated)} is given more than once (--attribute / --attribute-file)")
    if settings.get("api_key_file"):
        from distilora.serve.perspective.access import read_keys

        read_keys(settings["api_key_file"])  # a bad key file stops the server before any model is loaded
    return PerspectiveConfig(attributes=tuple(specs), **{k: v for k, v in settings.items() if v is not None})


def model_directory(run: RunLayout, name: str, export_first: bool = False) -> Path | None:
    """Where model ``name`` of ``run`` lives: its stage directory or its ONNX export (the export first when the
    server runs exports, ``--backend onnx``); None when neither exists."""
    stage = run.root / name
    export = RunExports(run).finished().get(name)
    if export_first and export is not None:
        return export
    return stage if (stage / "config.json").is_file() else export


@dataclass
class AttributePlan:
    """Which registry name scores each attribute, decided before any model is loaded."""

    served_run: Path
    registry_names: dict[str, str] = field(default_factory=dict)
    """Attribute name → the model's name in the registry."""
    extra_models: dict[str, Path] = field(default_factory=dict)
    """Registry name → model directory, for the models of runs other than the served one."""

    @classmethod
    def make(cls, config: PerspectiveConfig, served_run: str | Path) -> AttributePlan:
        plan = cls(Path(served_run))
        for spec in config.attributes:
            run = Path(spec.run) if spec.run is not None else plan.served_run
            if run.resolve() == plan.served_run.resolve():
                plan.registry_names[spec.name] = spec.model
            else:
                plan.registry_names[spec.name] = plan._add_model(spec, RunLayout(run))
        return plan

    def _add_model(self, spec: AttributeSpec, run: RunLayout) -> str:
        if not run.is_finished():
            raise FileNotFoundError(f"attribute {spec.name}: {run.root} is not a finished run (no results.json)")
        directory = model_directory(run, spec.model)
        if directory is None:
            available = ", ".join(RunResults.of(read_results(run)).models) or "none"
            raise FileNotFoundError(f"attribute {spec.name}: {run.root} has no model {spec.model!r}; "
                                    f"its models: {available}")
        for name, path in self.extra_models.items():
            if path.resolve() == directory.resolve():
                return name
        base = f"{run.root.resolve().name}/{spec.model}"
        name, count = base, 1
        while name in self.extra_models:
            count += 1
            name = f"{run.root.resolve().name}-{count}/{spec.model}"
        self.extra_models[name] = directory
        return name


@dataclass(frozen=True)
class ServedAttribute:
    """One attribute as served: the model that scores it, the label whose probability is the score, and what
    identifies that model (languages from its card, version, manifest hash)."""

    name: str
    model: str
    """The model's name in the registry (``/api/v1/classify`` answers with it too)."""
    label: str
    run: Path
    source_model: str
    """The model's name in its run."""
    model_dir: Path | None
    languages: tuple[str, ...] = ()
    """Primary language subtags from the model card (``en``); empty: unknown, any language is accepted."""
    version: str | None = None
    """The stage fingerprint of the model's manifest: it changes whenever what trained the model changes."""
    manifest_sha256: str | None = None

    def supports(self, languages: list[str]) -> bool:
        return not self.languages or all(language in self.languages for language in languages)

    def identity(self) -> dict[str, Any]:
        """What names the model behind the attribute (listing, feedback records)."""
        return {"name": self.name, "run": self.run.resolve().name, "model": self.source_model,
                "servedAs": self.model, "label": self.label, "languages": list(self.languages),
                "version": self.version, "manifestSha256": self.manifest_sha256, "distiloraVersion": __version__}


def primary_language(code: str) -> str:
    """``en-US`` / ``EN_gb`` → ``en``."""
    return re.split(r"[-_]", code.strip(), maxsplit=1)[0].lower()


def card_languages(model_dir: Path | None) -> tuple[str, ...]:
    """The ``language`` of the model card's metadata (primary subtags); empty without a card or a language."""
    card = model_dir / MODEL_CARD if model_dir is not None else None
    if card is None or not card.is_file():
        return ()
    from huggingface_hub import ModelCard

    try:
        language = ModelCard.load(card).data.language
    except (ValueError, OSError) as error:
        logger.warning("%s: unreadable model card (%s); any language is accepted", card, error)
        return ()
    codes = [language] if isinstance(language, str) else list(language or [])
    return tuple(dict.fromkeys(primary_language(code) for code in codes if isinstance(code, str) and code.strip()))


def manifest_identity(model_dir: Path | None) -> tuple[str | None, str | None]:
    """The manifest's stage fingerprint and the manifest file's SHA-256 (None, None without a manifest)."""
    manifest = model_dir / MANIFEST if model_dir is not None else None
    if manifest is None or not manifest.is_file():
        return None, None
    try:
        fingerprint = json.loads(manifest.read_text(encoding="utf-8")).get("fingerprint")
    except (ValueError, UnicodeDecodeError, AttributeError):
        fingerprint = None
    return (fingerprint if isinstance(fingerprint, str) else None), sha256_file(manifest)


def scored_label(spec: AttributeSpec, model: str, labels: list[str], decision: dict | None,
                 multi_label: bool = False) -> str:
    """The label whose probability is the attribute's score: the one named (a multi-label model's must be), or a
    binary model's positive label."""
    if spec.label is not None:
        if spec.label not in labels:
            raise ValueError(f"attribute {spec.name}: model {model} has no label {spec.label!r}; its labels: "
                             f"{', '.join(labels)}")
        return spec.label
    if multi_label:
        raise ValueError(f"attribute {spec.name}: model {model} is multi-label ({', '.join(labels)}); name the "
                         f"label to score: {SPEC_FORM}")
    if len(labels) != 2:
        raise ValueError(f"attribute {spec.name}: model {model} has {len(labels)} labels ({', '.join(labels)}); "
                         f"name the one to score: {SPEC_FORM}")
    positive = (decision or {}).get("positive_label")
    return positive if positive in labels else labels[1]


@dataclass
class AttributeTable:
    """The served attributes by name, resolved against the loaded models."""

    attributes: dict[str, ServedAttribute] = field(default_factory=dict)

    @classmethod
    def build(cls, config: PerspectiveConfig, plan: AttributePlan, registry: Any) -> AttributeTable:
        """Every configured attribute (or, with none, ``config.default_attribute`` from the served run's default
        model when it is binary); a ValueError naming the attribute when its model or label is not there."""
        specs = list(config.attributes)
        if not specs:
            default = registry.default_model
            if len(registry.get(default).labels) != 2 or getattr(registry.get(default), "multi_label", False):
                logger.warning("no Perspective attribute served: model %s is not binary; name one with --attribute "
                               "(%s)", default, SPEC_FORM)
                return cls()
            specs = [AttributeSpec(config.default_attribute, None, default)]
            plan.registry_names.setdefault(config.default_attribute, default)
        served = RunLayout(plan.served_run)
        table = cls()
        for spec in specs:
            name = plan.registry_names[spec.name]
            if name not in registry.classifiers:
                raise ValueError(f"attribute {spec.name}: the served run has no model {spec.model!r}; its models: "
                                 f"{', '.join(registry.names)}")
            classifier = registry.get(name)
            label = scored_label(spec, name, list(classifier.labels), getattr(classifier, "decision", None),
                                 getattr(classifier, "multi_label", False))
            extra = plan.extra_models.get(name)
            onnx = getattr(classifier, "backend", None) == "onnxruntime"
            model_dir = extra if extra is not None else model_directory(served, spec.model, export_first=onnx)
            version, manifest_hash = manifest_identity(model_dir)
            table.attributes[spec.name] = ServedAttribute(
                spec.name, name, label, Path(spec.run) if extra is not None and spec.run else plan.served_run,
                spec.model, model_dir, card_languages(model_dir), version, manifest_hash)
        return table

    def get(self, name: str) -> ServedAttribute | None:
        return self.attributes.get(name)

    @property
    def names(self) -> list[str]:
        return list(self.attributes)
