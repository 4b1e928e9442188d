"""The run directory: the one module that knows where a run keeps everything on disk.

```
<run>/
  teacher/ odd/ even/ lora/ …   finished stages: weights + tokenizer + stage.json + manifest.json
  seeds/<seed>/<name>/          the same for the extra seeds of ``num_seeds``
  <name>/calibration.json       temperature and decision threshold fitted on validation by the evaluation
  <name>/README.md              the model card, written after the evaluation
  <name>.partial/               a stage being written; renamed into place once its manifest exists
  predictions/<name>.json       per-item true labels and class probabilities (validation, test)
  results.json  results.md      every metric / the comparison table
  report.html  report.md  plots/
  checks/<name>.json            behavioural test suite results (``distilora check``)
  export/<name>[-int8]/         ONNX exports (``distilora export``): model.onnx + tokenizer + config + parity.json
  export/<name>.rejected-<t>/   a re-export that failed its gate while <name> passed (kept beside it, not served)
  export/<name>.old-<t>/        a replaced export that held files distilora did not write (moved aside, not served)
  .cache/  .work/  .lock        teacher targets / Trainer checkpoints / the lock of the run holding it
```

A stage's directory appears only when the stage is complete: it trains into ``<name>.partial/``, writes
``stage.json`` (its training record) and then ``manifest.json`` (checksums), and only then is renamed into place.
A directory whose manifest verifies and whose fingerprint matches is reused; anything else is trained again.
The evaluation adds ``calibration.json`` and ``README.md`` to finished stages the same way (a hard-linked copy with
the new files and manifest, swapped into place), so a crash leaves the old stage or the new one, never a mix.

A rerun never deletes what it did not write (:mod:`distilora.kept_files`): files a user added to a finished stage
are left where they are (and carried into the copies the evaluation swaps in); an edited model card or
calibration.json does not retrain the model, it is kept beside as ``README.md.edited-<time>`` when the run writes its
own; a stage replaced while it holds such files is moved to ``NAME.old-<time>/`` instead of being removed.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import logging
import os
import re
import shutil
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from distilora import kept_files
from distilora.artifacts import (
    MANIFEST,
    SWAPPED_SUFFIX,
    ArtifactError,
    add_to_manifest,
    changed_files,
    fsync_directory,
    fsync_tree,
    read_manifest,
    sha256_bytes,
    verify_manifest,
    write_atomic,
    write_manifest,
)

logger = logging.getLogger(__name__)

RESULTS = "results.json"
RESULTS_TABLE = "results.md"
STAGE_FILE = "stage.json"
CALIBRATION_FILE = "calibration.json"
MODEL_CARD = "README.md"
STAGE_EXTRAS = (CALIBRATION_FILE, MODEL_CARD)
"""Files the evaluation adds to a finished stage (:meth:`RunDirectory.add_to_stage`)."""
REPORT_FILES = ("report.html", "report.md")
CHECKS_DIR = "checks"
EXPORT_DIR = "export"
ONNX_FILE = "model.onnx"
PARITY_FILE = "parity.json"
PARITY_LABELS_FILE = "parity_labels.json"
REJECTED_EXPORT = ".rejected-"
"""Markers of export directories kept beside ``export/<name>/`` (never served): see the module's layout."""
SAFE_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]*")


class RunLocked(Exception):
    """Another process is running ``distilora run`` on the same output directory."""


def fingerprint(*parts: Any) -> str:
    """Stable hash of JSON-able parts (configs, hashes, names)."""
    return hashlib.sha256(json.dumps(parts, sort_keys=True, default=str).encode()).hexdigest()[:16]


@dataclass
class StageRecord:
    """What training a model produced, kept beside its weights."""

    name: str
    route: str
    fingerprint: str
    layers: list[int] | None = None
    seed: int | None = None
    train_loss: float | None = None
    train_loss_mean: float | None = None
    train_seconds: float | None = None
    trainable_params: int | None = None
    precision: str | None = None
    """``fp32`` / ``bf16`` the stage trained in; None: not trained by gradient, or trained before precisions existed
    (fp32)."""
    world_size: int | None = None
    """Processes that trained it together (torchrun); None: trained before this was recorded (1)."""
    history: list[dict[str, Any]] = field(default_factory=list)
    details: dict[str, Any] = field(default_factory=dict)
    """Route-specific facts (importance scores, the C a search chose, …), copied into results.json."""

    @property
    def best_validation_macro_f1(self) -> float | None:
        scores = [entry["eval_macro_f1"] for entry in self.history if "eval_macro_f1" in entry]
        return max(scores) if scores else None


class RunDirectory:
    """Paths and files of one run. ``main_seed`` decides which seed's models sit at the top level."""

    def __init__(self, root: str | Path, main_seed: int | None = None):
        self.root = Path(root)
        self.main_seed = main_seed

    # ---- layout ----------------------------------------------------------------------------------------------
    def model_dir(self, name: str, seed: int | None = None) -> Path:
        """Main-seed models live at the top of the run; other seeds under ``seeds/<seed>/``."""
        if seed is None or seed == self.main_seed:
            return self.root / name
        return self.root / "seeds" / str(seed) / name

    def work_dir(self, name: str, stage_fingerprint: str) -> Path:
        """Where a stage's Trainer checkpoints live while it trains (an interrupted stage resumes from there)."""
        return self.root / ".work" / f"{name}-{stage_fingerprint}"

    def teacher_targets_file(self, key: str) -> Path:
        return self.root / ".cache" / f"teacher-targets-{key}.safetensors"

    @property
    def plots_dir(self) -> Path:
        return self.root / "plots"

    def predictions_file(self, name: str) -> Path:
        return self.root / "predictions" / f"{name}.json"

    # ---- behavioural checks ----------------------------------------------------------------------------------
    @property
    def checks_dir(self) -> Path:
        return self.root / CHECKS_DIR

    def check_file(self, name: str) -> Path:
        """``checks/<name>.json``; ``name`` must be a plain file name (letters, digits, ``_ . -``)."""
        if not SAFE_NAME.fullmatch(name):
            raise ValueError(f"check name {name!r}: use letters, digits, '_', '.' and '-' only")
        return self.checks_dir / f"{name}.json"

    def check_plot(self, name: str, column: str) -> Path:
        """The heat-map of one check's grouping column under ``plots/``."""
        return self.plots_dir / f"checks_{name}_{re.sub(r'[^A-Za-z0-9_.-]+', '_', column)}.png"

    def write_check(self, name: str, check: dict[str, Any]) -> Path:
        path = self.check_file(name)
        path.parent.mkdir(parents=True, exist_ok=True)
        write_atomic(path, json.dumps(check, indent=1))
        return path

    def read_checks(self) -> dict[str, dict[str, Any]]:
        """Every ``checks/*.json`` of the run by name (sorted); a file that is not valid JSON is logged, left out."""
        checks = {}
        for path in sorted(self.checks_dir.glob("*.json")):
            try:
                checks[path.stem] = json.loads(path.read_text())
            except (OSError, ValueError) as error:
                logger.warning("%s: cannot be read (%s); left out", path, error)
        return checks

    # ---- ONNX exports ----------------------------------------------------------------------------------------
    @property
    def exports_dir(self) -> Path:
        return self.root / EXPORT_DIR

    @staticmethod
    def export_name(name: str, quantize: str | None = None) -> str:
        """``odd`` (fp32) or ``odd-int8``: the export's directory name, and its model name when served."""
        return f"{name}-{quantize}" if quantize else name

    def export_dir(self, name: str, quantize: str | None = None) -> Path:
        """``export/<name>[-<quantize>]/``; ``name`` must be a plain file name."""
        if not SAFE_NAME.fullmatch(name):
            raise ValueError(f"model name {name!r}: use letters, digits, '_', '.' and '-' only")
        return self.exports_dir / self.export_name(name, quantize)

    def exports(self) -> dict[str, Path]:
        """Every finished export (a directory with ``model.onnx`` and a manifest; no ``.partial`` / ``.old`` /
        ``.old-<time>`` / ``.rejected-<time>``), by name, sorted; whether it verifies and passed its parity gate is for
        the loader to say."""
        if not self.exports_dir.is_dir():
            return {}
        return {path.name: path for path in sorted(self.exports_dir.iterdir())
                if SAFE_NAME.fullmatch(path.name) and not path.name.endswith((".partial", SWAPPED_SUFFIX))
                and not kept_files.is_set_aside(path.name) and REJECTED_EXPORT not in path.name
                and (path / ONNX_FILE).is_file() and (path / "manifest.json").is_file()}

    def start_export(self, export_dir: Path) -> Path:
        """A fresh, empty ``export/<name>.partial/`` (any leftover of an interrupted export is removed)."""
        return self.start_stage(export_dir)

    def finish_export(self, partial: Path, export_dir: Path, info: dict[str, Any]) -> None:
        """Make every file durable, write the manifest (with ``info``), then swap the directory into place."""
        fsync_tree(partial)
        write_manifest(partial, info)
        self._swap(partial, export_dir)

    def abandon_export(self, partial: Path) -> None:
        """Remove a failed export's ``.partial`` (and ``export/`` itself when nothing else is in it)."""
        shutil.rmtree(partial, ignore_errors=True)
        with contextlib.suppress(OSError):
            self.exports_dir.rmdir()

    # ---- the run as a whole ----------------------------------------------------------------------------------
    def ensure_writable(self) -> None:
        try:
            self.root.mkdir(parents=True, exist_ok=True)
            probe = self.root / f".write-test-{os.getpid()}"  # one per process: torchrun's run them side by side
            probe.write_text("ok")
            probe.unlink()
        except OSError as error:
            raise PermissionError(f"--output-dir {self.root}: cannot write there ({error.strerror})") from error

    @contextlib.contextmanager
    def lock(self) -> Iterator[None]:
        """Hold an exclusive lock on the run for the ``with`` block; :class:`RunLocked` at once if another has it.

        The operating system drops the lock when its process ends, however it ends (``kill -9`` included).
        """
        self.ensure_writable()
        path = self.root / ".lock"
        handle = path.open("a+")
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.seek(0)
            holder = handle.read().strip() or "unknown"
            handle.close()
            raise RunLocked(f"{self.root} is in use by another distilora run (PID {holder}); wait for it to end "
                            "or choose another --output-dir") from None
        try:
            handle.seek(0)
            handle.truncate()
            handle.write(str(os.getpid()))
            handle.flush()
            yield
        finally:
            handle.close()  # closing the file releases the lock

    def read_results(self) -> dict[str, Any]:
        path = self.root / RESULTS
        if not path.exists():
            raise FileNotFoundError(f"{path}: not found. Make a run first: distilora run --output-dir {self.root}")
        return json.loads(path.read_text())

    def write_results(self, results: dict[str, Any], table: str | None = None) -> None:
        """``results.json`` (and the Markdown ``table`` as results.md), each replaced atomically."""
        write_atomic(self.root / RESULTS, json.dumps(results, indent=1))
        if table is not None:
            write_atomic(self.root / RESULTS_TABLE, table)

    def write_predictions(self, name: str, predictions: dict[str, Any]) -> None:
        path = self.predictions_file(name)
        path.parent.mkdir(parents=True, exist_ok=True)
        write_atomic(path, json.dumps(predictions))

    def read_predictions(self, name: str) -> dict[str, Any] | None:
        """A model's saved predictions, or None when it has none."""
        path = self.predictions_file(name)
        return json.loads(path.read_text()) if path.exists() else None

    def write_report(self, files: dict[str, str]) -> dict[str, Path]:
        """Write the report's text files (``report.html``, ``report.md``) atomically; their paths."""
        written = {}
        for name, text in files.items():
            if name not in REPORT_FILES:
                raise ValueError(f"{name}: not a report file")
            written[name] = self.root / name
            write_atomic(written[name], text)
        return written

    @staticmethod
    def latest(runs: Path = Path("runs")) -> RunDirectory | None:
        """The run under ``runs/`` whose results.json is newest, or None."""
        candidates = [p for p in runs.glob(f"*/{RESULTS}") if p.is_file()]
        if not candidates:
            return None
        return RunDirectory(max(candidates, key=lambda p: p.stat().st_mtime).parent)

    def is_finished(self) -> bool:
        return (self.root / RESULTS).is_file()

    # ---- stages ----------------------------------------------------------------------------------------------
    def completed(self, stage_dir: Path, expected_fingerprint: str) -> StageRecord | None:
        """The record of a finished, intact stage with this fingerprint, or None (train it).

        Finishes what a crash interrupted first: a ``.partial`` whose manifest verifies is adopted, and an ``.old``
        left by a half-done swap is put back, rather than trained again. A reused stage keeps the files the run did
        not write (one warning lists them); an edited model card or calibration.json is set aside, not retrained.
        """
        partial, old = _sibling(stage_dir, ".partial"), _sibling(stage_dir, SWAPPED_SUFFIX)
        if not stage_dir.exists() and old.exists() and _finished(partial) is None:
            logger.warning("%s: restoring the finished stage a crash left as %s", stage_dir, old.name)
            old.rename(stage_dir)
            fsync_directory(stage_dir.parent)
        record = _finished(stage_dir)
        if record is not None and record.fingerprint == expected_fingerprint:
            kept_files.retire(old, stage_dir)
            _keep_user_files(stage_dir)
            return record
        adopted = _finished(partial)
        if adopted is not None and adopted.fingerprint == expected_fingerprint:
            logger.warning("%s: adopting %s, finished before a crash", stage_dir, partial.name)
            self._swap(partial, stage_dir)
            return adopted
        return None

    def start_stage(self, stage_dir: Path) -> Path:
        """A fresh, empty ``<name>.partial/`` to save a stage into."""
        path = _sibling(stage_dir, ".partial")
        if path.exists():
            shutil.rmtree(path)
        path.mkdir(parents=True)
        return path

    def finish_stage(self, partial: Path, stage_dir: Path, record: StageRecord, data_fingerprint: str) -> None:
        """Write the record, make every file durable, write the manifest, then swap the directory into place."""
        (partial / STAGE_FILE).write_text(json.dumps(asdict(record), indent=1))
        fsync_tree(partial)
        write_manifest(partial, {
            "stage": record.name, "route": record.route, "fingerprint": record.fingerprint, "seed": record.seed,
            "data_fingerprint": data_fingerprint, "layers": record.layers,
            "metrics": {"train_loss": record.train_loss, "best_validation_macro_f1": record.best_validation_macro_f1},
        })
        self._swap(partial, stage_dir)

    def add_to_stage(self, stage_dir: Path, files: dict[str, str]) -> bool:
        """Add or replace ``files`` (name → text; only :data:`STAGE_EXTRAS`) in a finished stage and list them in its
        manifest, keeping the manifest's info and the checksums it verified. False when nothing changes.

        Made on ``<name>.partial/`` (hard links to the verified files, the new files written beside them) and
        swapped into place like a trained stage: reuse (:meth:`completed`), crash recovery and checksum-verified
        loading see the old stage or the new one.
        """
        unknown = sorted(set(files) - set(STAGE_EXTRAS))
        if unknown:
            raise ValueError(f"{', '.join(unknown)}: not a file the evaluation adds to a model directory")
        manifest = verify_manifest(stage_dir)
        encoded = {name: text.encode("utf-8") for name, text in files.items()}
        if all(manifest["files"].get(name) == sha256_bytes(data) for name, data in encoded.items()):
            return False
        partial = _linked_copy(stage_dir)
        for name, text in files.items():
            (partial / name).unlink(missing_ok=True)  # never write through a hard link into the finished stage
            write_atomic(partial / name, text)
        fsync_tree(partial)
        add_to_manifest(partial, manifest, sorted(files))
        self._swap(partial, stage_dir)
        return True

    @staticmethod
    def _swap(partial: Path, stage_dir: Path) -> None:
        """Rename ``partial`` into place; the stage it replaces is removed, or moved aside when it holds files the
        run did not write that the new one lacks (:func:`kept_files.retire`)."""
        old = _sibling(stage_dir, SWAPPED_SUFFIX)
        if stage_dir.exists():
            kept_files.retire(old, stage_dir)  # a crash's leftover
            stage_dir.rename(old)
        partial.rename(stage_dir)
        fsync_directory(stage_dir.parent)
        kept_files.retire(old, stage_dir)

    @staticmethod
    def weights_hash(stage_dir: Path) -> str:
        """Hash of a finished stage's weight files, read from its verified manifest (the weights, not settings)."""
        files = verify_manifest(stage_dir)["files"]
        return fingerprint({k: v for k, v in files.items() if k.endswith(".safetensors")})

    def remove_work(self, work: Path) -> None:
        shutil.rmtree(work, ignore_errors=True)
        with contextlib.suppress(OSError):  # only removed when no other stage left work behind
            work.parent.rmdir()


def _keep_user_files(stage_dir: Path) -> None:
    """Warn about the files a user added to a reused stage (they stay), and set aside edited :data:`STAGE_EXTRAS` so
    that the stage verifies again (the evaluation writes the run's own)."""
    manifest = read_manifest(stage_dir)
    extras = kept_files.harmless_extras(stage_dir, manifest["files"])
    if extras:
        logger.warning("%s: reusing it; left alone the files in it the run did not write: %s", stage_dir,
                       kept_files.in_brief(extras))
    edited = changed_files(stage_dir, {name: manifest["files"][name] for name in STAGE_EXTRAS
                                       if name in manifest["files"]})
    if edited:
        _set_aside(stage_dir, manifest, edited)


def _set_aside(stage_dir: Path, manifest: dict[str, Any], edited: list[str]) -> None:
    """Swap in a copy of the stage where each ``edited`` file is renamed ``NAME.edited-<time>`` and unlisted."""
    partial = _linked_copy(stage_dir)
    suffix = kept_files.EDITED + kept_files.stamp()
    for name in edited:
        if (partial / name).exists() or (partial / name).is_symlink():
            kept = kept_files.free_name(partial / (name + suffix))
            (partial / name).rename(kept)
            logger.warning("%s: %s was changed after the run wrote it; kept as %s (the run writes its own)",
                           stage_dir, name, kept.name)
    fsync_tree(partial)
    add_to_manifest(partial, {**manifest, "files": {k: v for k, v in manifest["files"].items() if k not in edited}},
                    [])
    RunDirectory._swap(partial, stage_dir)


def _linked_copy(stage_dir: Path) -> Path:
    """A fresh ``<name>.partial/``: the stage's files hard-linked (its own and the user's), without its manifest."""
    partial = _sibling(stage_dir, ".partial")
    if partial.exists():
        shutil.rmtree(partial)
    shutil.copytree(stage_dir, partial, symlinks=True, copy_function=_link_or_copy,
                    ignore=lambda folder, names: [MANIFEST] if Path(folder) == stage_dir else [])
    return partial


def _link_or_copy(source: str, target: str) -> None:
    """A hard link (no bytes copied), or a copy where the file system has none."""
    try:
        os.link(source, target)
    except OSError:
        shutil.copy2(source, target)


def _sibling(stage_dir: Path, suffix: str) -> Path:
    return stage_dir.with_name(stage_dir.name + suffix)


def _finished(directory: Path) -> StageRecord | None:
    """The record of a stage directory whose manifest verifies, or None (a malformed one is logged, not raised).
    The files the evaluation rewrites (:data:`STAGE_EXTRAS`) do not decide: an edited model card retrains nothing."""
    if not (directory / STAGE_FILE).exists():
        return None
    try:
        verify_manifest(directory, unchecked=STAGE_EXTRAS)
        return StageRecord(**json.loads((directory / STAGE_FILE).read_text()))
    except (ArtifactError, ValueError, TypeError) as error:
        logger.warning("%s: %s; training this stage again", directory, error)
        return None
