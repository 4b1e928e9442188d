"""``score_file``: one model of a run, one input file, one output file — the entry point of ``distilora score``."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from distilora.artifacts import sha256_file
from distilora.config import ScoreConfig
from distilora.inference import Classifier, load_classifier
from distilora.precision import resolve_precision
from distilora.run_dir import RunLayout
from distilora.scoring import backends
from distilora.scoring.formats import InputError, InputFile
from distilora.scoring.job import ScoreJob, ScoreSummary, input_identity
from distilora.scoring.scorer import Scorer


def model_identity(run: Path, model: str) -> dict[str, Any]:
    """The run, the model and its manifest's hash: what the output's metadata names, and what a resume must match."""
    model_dir = RunLayout(run).model_dir(model)
    manifest = model_dir / "manifest.json"
    if not manifest.is_file():
        available = sorted(p.name for p in Path(run).iterdir() if (p / "manifest.json").is_file()) \
            if Path(run).is_dir() else []
        raise InputError(f"--model {model}: no finished model {model_dir}"
                         + (f"; models in {run}: {', '.join(available)}" if available else ""))
    return {"run": str(Path(run).resolve()), "model": model, "manifest_sha256": sha256_file(manifest)}


def load_scoring_classifier(run: Path, model: str, config: ScoreConfig, probe: list[str],
                            chosen: backends.Candidate | None = None) -> tuple[Classifier, backends.Candidate, str]:
    """The classifier that will score, the runtime it is, and one line saying why (``chosen``: the runtime an
    interrupted run of the same job chose, so that one output is never scored by two runtimes)."""
    if chosen is not None:
        return backends.load(run, model, chosen), chosen, f"backend {chosen.name} (chosen when this job started)"
    if config.backend == "auto":
        classifier, choice = backends.choose(run, model, probe)
        return classifier, choice.candidate, choice.describe()
    if config.backend == "onnx":
        exports = backends.model_exports(run, model)
        if not exports:
            raise InputError(f"--backend onnx: {run} has no ONNX export of {model}; run distilora export first")
        candidate = backends.Candidate("onnx", export=exports[0])
        return backends.load(run, model, candidate), candidate, f"backend {candidate.name} (asked for)"
    classifier = load_classifier(run, model, precision=config.precision)
    candidate = backends.Candidate(classifier.backend, classifier.precision)
    return classifier, candidate, f"backend {candidate.name} (asked for)"


@dataclass
class ScoringPlan:
    """A job ready to run: its parts and identity, and how its scorer is made (the runtime chosen is kept)."""

    job: ScoreJob
    run: Path
    model: str
    config: ScoreConfig
    kept: list[str]
    candidate: backends.Candidate | None = None

    def make_scorer(self, probe: list[str], runtime: dict[str, Any] | None) -> tuple[Scorer, str, dict[str, Any]]:
        chosen = backends.Candidate(**runtime) if runtime else None
        classifier, self.candidate, described = load_scoring_classifier(self.run, self.model, self.config, probe,
                                                                        chosen)
        classifier.batch_size = self.config.batch_size
        scorer = Scorer(classifier, self.config.text_column, self.kept, self.config.long_text)
        return scorer, described, asdict(self.candidate)


def plan(run: str | Path, model: str, input_file: str | Path, output: str | Path,
         config: ScoreConfig) -> ScoringPlan:
    """Check the input, the model and the output (one line for each problem, before anything is written)."""
    run = Path(run)
    kept = list(dict.fromkeys([*([config.id_column] if config.id_column else []), *config.keep_columns]))
    source = InputFile(Path(input_file), config.text_column, list(dict.fromkeys([config.text_column, *kept])))
    options = {k: v for k, v in asdict(config).items() if k in ScoreConfig.IDENTITY}
    # as JSON would read it back (tuples become lists), so that a resume compares like with like
    identity = json.loads(json.dumps({"input": input_identity(source.path), "model": model_identity(run, model),
                                      "options": options}))
    if config.backend == "pytorch":
        resolve_precision(config.precision)  # refuse bf16 without native support before anything is read
    job = ScoreJob(source, Path(output), identity, chunk_rows=config.chunk_rows, progress=config.progress)
    job.check_output()
    return ScoringPlan(job, run, model, config, kept)


def score_file(run: str | Path, model: str, input_file: str | Path, output: str | Path,
               config: ScoreConfig | None = None) -> ScoreSummary:
    """Score every row of ``input_file`` (CSV, JSON Lines or Parquet) with ``model`` of ``run`` into ``output``;
    resumable: the same call after an interruption finishes the job (see :class:`~distilora.scoring.job.ScoreJob`)."""
    scoring = plan(run, model, input_file, output, config or ScoreConfig())
    return scoring.job.run(scoring.make_scorer)
