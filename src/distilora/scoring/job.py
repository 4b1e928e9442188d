"""A resumable scoring job: the input read in chunks, each scored chunk written as a numbered part beside the output
(with a manifest), the parts joined into the output at the end. A rerun of the same command skips finished parts; a
rerun with another model or input is refused; nothing the job did not write is ever removed."""

from __future__ import annotations

import json
import logging
import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
from tqdm.auto import tqdm

from distilora.artifacts import sha256_file, write_atomic
from distilora.scoring.formats import InputError, InputFile, file_format, join_parts, write_part
from distilora.scoring.scorer import Scorer

logger = logging.getLogger(__name__)

MANIFEST = "manifest.json"
ScorerFactory = Callable[[list[str], dict[str, Any] | None], tuple[Scorer, str, dict[str, Any]]]
"""``(probe texts, runtime chosen before or None) -> (scorer, description, runtime)``."""
METADATA_KEY = "distilora"
MULTI_LABEL_KEYS = ("multi_label", "thresholds", "score_columns", "flag_columns", "labels_column")
"""What a multi-label job's manifest and output metadata add (:meth:`Scorer.output_metadata`)."""
ROW_COLUMN = "row"


@dataclass
class PartRecord:
    """A finished part: its rows and what became of them."""

    file: str
    rows: int
    sha256: str
    scored: int
    flagged: int
    reasons: dict[str, int] = field(default_factory=dict)
    flagged_labels: dict[str, int] | None = None
    """A multi-label model's rows per label that it is on in (None: a single-label model)."""

    def to_dict(self) -> dict[str, Any]:
        record = asdict(self)
        if self.flagged_labels is None:
            del record["flagged_labels"]
        return record


@dataclass
class ScoreSummary:
    """What a job did: rows in, scored, flagged (the positive label, or for a multi-label model any label on, with
    the rows per label), unscorable by reason, speed."""

    rows: int = 0
    scored: int = 0
    flagged: int = 0
    unscorable: dict[str, int] = field(default_factory=dict)
    rows_this_run: int = 0
    wall_s: float = 0.0
    resumed_parts: int = 0
    backend: str = ""
    positive_label: str | None = None
    flagged_labels: dict[str, int] | None = None

    @property
    def rows_per_s(self) -> float:
        return self.rows_this_run / self.wall_s if self.wall_s else 0.0

    def describe(self) -> str:
        share = self.flagged / max(self.scored, 1)
        flagged = f", {self.flagged:,} flagged {self.positive_label} ({share:.1%})" if self.positive_label else ""
        if self.flagged_labels is not None:
            each = ", ".join(f"{label} {count:,}" for label, count in self.flagged_labels.items())
            flagged = f", {self.flagged:,} with at least one label on ({share:.1%}; {each})"
        reasons = ", ".join(f"{count:,} {reason}" for reason, count in sorted(self.unscorable.items()))
        resumed = f"; {self.resumed_parts} finished parts reused" if self.resumed_parts else ""
        return (f"{self.rows:,} rows: {self.scored:,} scored{flagged}; "
                f"{sum(self.unscorable.values()):,} unscorable{f' ({reasons})' if reasons else ''}; "
                f"{self.rows_per_s:,.0f} rows/s over {self.wall_s:.1f} s{resumed}; {self.backend}")


def input_identity(path: Path) -> dict[str, Any]:
    stat = path.stat()
    return {"path": str(path.resolve()), "bytes": stat.st_size, "sha256": sha256_file(path)}


class ScoreJob:
    """``ScoreJob(input, output, identity, scorer_factory).run()``; ``identity`` (model, input, options) decides
    whether an earlier, interrupted job may be resumed into ``output``."""

    def __init__(self, source: InputFile, output: Path, identity: dict[str, Any], chunk_rows: int = 10_000,
                 progress: bool = True):
        self.source = source
        self.output = Path(output)
        self.format = file_format(self.output, "--output")
        self.identity = identity
        self.chunk_rows = chunk_rows
        self.progress = progress
        self.parts_dir = self.output.with_name(self.output.name + ".parts")
        self.meta_file = self.output.with_name(self.output.name + ".meta.json")

    def check_output(self) -> bool:
        """True when ``output`` is this very job, already finished; refuses an output that is someone else's."""
        if self.output.exists():
            if self._finished_identity() == self.identity:
                return True
            raise InputError(f"--output {self.output} exists and is not this job's output (another model, input or "
                             "options, or not written by distilora score); choose another --output")
        if self.parts_dir.exists():
            manifest = self._read_manifest()
            if manifest.get("identity") != self.identity:
                raise InputError(f"--output {self.output}: {self.parts_dir} holds an unfinished job of another model, "
                                 "input or options; rerun that command to finish it, or choose another --output")
        return False

    def run(self, scorer_factory: ScorerFactory,
            scored_stream: Callable[[Scorer], Iterator[pa.Table]] | None = None) -> ScoreSummary:
        """Score every chunk not already done. ``scorer_factory(probe_texts, runtime)`` gives the scorer, a line
        describing the runtime it runs and that runtime as a record (called once, with the first chunk to score, so
        that it may time runtimes on its texts; ``runtime``: the one an interrupted run of this job chose, kept).
        ``scored_stream(scorer)``: the input's chunks already scored elsewhere (Ray), in input order; finished parts
        are then still computed but not written again."""
        if self.check_output():
            logger.info("%s is already complete (same model, input and options): nothing to do", self.output)
            return summarise(self._read_finished_metadata(), 0, 0.0)
        start = time.perf_counter()
        manifest = self._read_manifest() if self.parts_dir.exists() else {"identity": self.identity, "parts": []}
        self.parts_dir.mkdir(parents=True, exist_ok=True)
        done = self._intact_parts(manifest["parts"])
        reused, rows_this_run = len(done), 0
        scorer: Scorer | None = None
        with tqdm(total=self.source.count_rows(), unit="rows", desc="Scoring", disable=not self.progress,
                  smoothing=0.05) as bar:
            if scored_stream is not None:
                scorer = self._make_scorer(scorer_factory, next(self.source.batches(self.chunk_rows)), manifest)
                chunks: Iterator[tuple[pa.Table | None, pa.Table | None]] = \
                    ((None, scored) for scored in scored_stream(scorer))
            else:
                chunks = ((chunk, None) for chunk in self.source.batches(self.chunk_rows))
            for index, (chunk, scored) in enumerate(chunks):
                rows = len(chunk if chunk is not None else scored)
                if index >= len(done):
                    scorer = scorer or self._make_scorer(scorer_factory, chunk, manifest)
                    self._add_part(done, manifest, index, scored if scored is not None else scorer(chunk), scorer)
                    rows_this_run += rows
                bar.update(rows)
        if not done:
            raise InputError(f"--input {self.source.path}: no rows to score")
        self._finish(done, manifest)
        return summarise({**manifest, "parts": [p.to_dict() for p in done]}, rows_this_run,
                             time.perf_counter() - start, reused)

    def _make_scorer(self, scorer_factory: ScorerFactory, first_chunk: pa.Table, manifest: dict[str, Any]) -> Scorer:
        texts = first_chunk.column(self.source.text_column).to_pylist()
        probe = [t for t in texts if isinstance(t, str) and t.strip()]
        scorer, backend, runtime = scorer_factory(probe, manifest.get("runtime"))
        manifest.update(backend=backend, runtime=runtime, labels=scorer.labels, positive_label=scorer.positive_label,
                        **scorer.output_metadata())
        tqdm.write(f"distilora score: {backend}")
        return scorer

    def _add_part(self, done: list[PartRecord], manifest: dict[str, Any], index: int, scored: pa.Table,
                  scorer: Scorer) -> None:
        """Write chunk ``index``'s scores as a part, and the manifest that lists it."""
        first = index * self.chunk_rows
        scored = scored.add_column(0, ROW_COLUMN, pa.array(range(first, first + len(scored)), type=pa.int64()))
        path = self.parts_dir / self._part_name(index)
        write_part(scored, path, self.format)
        reasons = Counter(r for r in scored.column("reason").to_pylist() if r is not None)
        flagged, per_label = scorer.flagged(scored)
        done.append(PartRecord(path.name, len(scored), sha256_file(path), len(scored) - sum(reasons.values()),
                               flagged, dict(reasons), per_label if scorer.multi_label else None))
        manifest["parts"] = [p.to_dict() for p in done]
        write_atomic(self.parts_dir / MANIFEST, json.dumps(manifest, indent=1))

    def _intact_parts(self, recorded: list[dict[str, Any]]) -> list[PartRecord]:
        """The recorded parts 0, 1, … up to the first one missing or changed (that one and later are redone)."""
        intact = []
        for index, fields in enumerate(recorded):
            part = PartRecord(**fields)
            path = self.parts_dir / part.file
            if part.file != self._part_name(index) or not path.is_file() or sha256_file(path) != part.sha256:
                break
            intact.append(part)
        return intact

    def _part_name(self, index: int) -> str:
        return f"part-{index:06d}{self.output.suffix}"

    def _finish(self, parts: list[PartRecord], manifest: dict[str, Any]) -> None:
        metadata = {**self.identity, "backend": manifest.get("backend"), "parts": [p.to_dict() for p in parts],
                    "labels": manifest.get("labels"), "positive_label": manifest.get("positive_label"),
                    **{key: manifest[key] for key in MULTI_LABEL_KEYS if key in manifest}}
        join_parts([self.parts_dir / p.file for p in parts], self.output, self.format,
                   {METADATA_KEY: json.dumps(metadata)})
        if self.format != "parquet":
            write_atomic(self.meta_file, json.dumps(metadata, indent=1))
        self._remove_parts(parts)

    def _remove_parts(self, parts: list[PartRecord]) -> None:
        """Only the files this job wrote; the folder goes only if nothing else is in it."""
        for name in [p.file for p in parts] + [MANIFEST]:
            (self.parts_dir / name).unlink(missing_ok=True)
        try:
            self.parts_dir.rmdir()
        except OSError:
            logger.warning("%s holds files distilora score did not write: left as it is", self.parts_dir)

    def _read_manifest(self) -> dict[str, Any]:
        try:
            return json.loads((self.parts_dir / MANIFEST).read_text())
        except (OSError, json.JSONDecodeError):
            raise InputError(f"--output {self.output}: {self.parts_dir} exists but has no readable {MANIFEST}; it is "
                             "not an unfinished distilora score job, so choose another --output") from None

    def _read_finished_metadata(self) -> dict[str, Any]:
        try:
            if self.format == "parquet":
                raw = (pq.read_schema(self.output).metadata or {}).get(METADATA_KEY.encode())
                return json.loads(raw) if raw else {}
            return json.loads(self.meta_file.read_text()) if self.meta_file.is_file() else {}
        except (OSError, ValueError, pa.ArrowException):
            return {}

    def _finished_identity(self) -> dict[str, Any] | None:
        metadata = self._read_finished_metadata()
        return {k: metadata.get(k) for k in self.identity} if metadata else None


def summarise(job: dict[str, Any], rows_this_run: int, wall_s: float, resumed: int = 0) -> ScoreSummary:
    """The summary of a job's manifest (or a finished output's metadata): its parts, runtime and labels."""
    parts = job.get("parts") or []
    unscorable: Counter[str] = Counter()
    per_label: Counter[str] | None = Counter(dict.fromkeys(job["labels"], 0)) if job.get("multi_label") else None
    for part in parts:
        unscorable.update(part.get("reasons") or {})
        if per_label is not None:
            per_label.update(part.get("flagged_labels") or {})
    return ScoreSummary(rows=sum(p["rows"] for p in parts), scored=sum(p["scored"] for p in parts),
                        flagged=sum(p["flagged"] for p in parts), unscorable=dict(unscorable),
                        rows_this_run=rows_this_run, wall_s=wall_s, resumed_parts=resumed,
                        backend=job.get("backend") or "", positive_label=job.get("positive_label"),
                        flagged_labels=dict(per_label) if per_label is not None else None)
