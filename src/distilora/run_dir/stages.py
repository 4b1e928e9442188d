"""The transactional stage store: a directory appears whole or not at all, and a rerun reuses what is finished.

A stage trains into ``<name>.partial/``, writes ``stage.json`` (its training record) and then ``manifest.json``
(checksums), and only then is renamed into place. A directory whose manifest verifies and whose fingerprint matches
is reused; anything else is trained again. The evaluation adds ``calibration.json`` and ``README.md`` to finished
stages the same way (a hard-linked copy with the new files and manifest, swapped into place), so a crash leaves the
old stage or the new one, never a mix. ONNX exports are written and swapped into place by the same operations.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import shutil
from dataclasses import asdict
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
from distilora.run_dir.layout import CALIBRATION_FILE, MODEL_CARD
from distilora.run_dir.records import StageRecord, fingerprint

logger = logging.getLogger(__name__)

STAGE_FILE = "stage.json"
STAGE_EXTRAS = (CALIBRATION_FILE, MODEL_CARD)
"""Files the evaluation adds to a finished stage (:meth:`StageStore.add_to_stage`)."""


class StageStore:
    """Saves, reuses and amends finished directories atomically. ``extras``: the files added to a finished stage
    after training (they do not decide reuse: an edited model card retrains nothing)."""

    def __init__(self, extras: tuple[str, ...] = STAGE_EXTRAS):
        self.extras = extras

    def finished(self, directory: Path) -> StageRecord | None:
        """The record of a stage directory whose manifest verifies, or None (a malformed one is logged, not raised).
        Reads only: nothing is adopted, restored or set aside (see :meth:`completed`)."""
        if not (directory / STAGE_FILE).exists():
            return None
        try:
            verify_manifest(directory, unchecked=self.extras)
            return StageRecord(**json.loads((directory / STAGE_FILE).read_text()))
        except (ArtifactError, ValueError, TypeError) as error:
            logger.warning("%s: %s; training this stage again", directory, error)
            return None

    def completed(self, stage_dir: Path, expected_fingerprint: str) -> StageRecord | None:
        """The record of a finished, intact stage with this fingerprint, or None (train it).

        Finishes what a crash interrupted first: a ``.partial`` whose manifest verifies is adopted, and an ``.old``
        left by a half-done swap is put back, rather than trained again. A reused stage keeps the files the run did
        not write (one warning lists them); an edited model card or calibration.json is set aside, not retrained.
        """
        partial, old = _sibling(stage_dir, ".partial"), _sibling(stage_dir, SWAPPED_SUFFIX)
        if not stage_dir.exists() and old.exists() and self.finished(partial) is None:
            logger.warning("%s: restoring the finished stage a crash left as %s", stage_dir, old.name)
            old.rename(stage_dir)
            fsync_directory(stage_dir.parent)
        record = self.finished(stage_dir)
        if record is not None and record.fingerprint == expected_fingerprint:
            kept_files.retire(old, stage_dir)
            self._keep_user_files(stage_dir)
            return record
        adopted = self.finished(partial)
        if adopted is not None and adopted.fingerprint == expected_fingerprint:
            logger.warning("%s: adopting %s, finished before a crash", stage_dir, partial.name)
            self.swap(partial, stage_dir)
            return adopted
        return None

    @staticmethod
    def start(target: Path) -> Path:
        """A fresh, empty ``<name>.partial/`` to save into (any leftover of an interrupted save is removed)."""
        path = _sibling(target, ".partial")
        if path.exists():
            shutil.rmtree(path)
        path.mkdir(parents=True)
        return path

    @classmethod
    def finish(cls, partial: Path, target: Path, info: dict[str, Any]) -> None:
        """Make every file durable, write the manifest (with ``info``), then swap the directory into place."""
        fsync_tree(partial)
        write_manifest(partial, info)
        cls.swap(partial, target)

    def finish_stage(self, partial: Path, stage_dir: Path, record: StageRecord, data_fingerprint: str) -> None:
        """Write the record, then :meth:`finish` the stage with its manifest."""
        (partial / STAGE_FILE).write_text(json.dumps(asdict(record), indent=1))
        self.finish(partial, stage_dir, {
            "stage": record.name, "route": record.route, "fingerprint": record.fingerprint, "seed": record.seed,
            "data_fingerprint": data_fingerprint, "layers": record.layers,
            "metrics": {"train_loss": record.train_loss, "best_validation_macro_f1": record.best_validation_macro_f1},
        })

    def add_to_stage(self, stage_dir: Path, files: dict[str, str]) -> bool:
        """Add or replace ``files`` (name → text; only the store's ``extras``) in a finished stage and list them in
        its manifest, keeping the manifest's info and the checksums it verified. False when nothing changes.

        Made on ``<name>.partial/`` (hard links to the verified files, the new files written beside them) and
        swapped into place like a trained stage: reuse (:meth:`completed`), crash recovery and checksum-verified
        loading see the old stage or the new one.
        """
        unknown = sorted(set(files) - set(self.extras))
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
        self.swap(partial, stage_dir)
        return True

    @staticmethod
    def swap(partial: Path, stage_dir: Path) -> None:
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

    @staticmethod
    def remove_work(work: Path) -> None:
        shutil.rmtree(work, ignore_errors=True)
        with contextlib.suppress(OSError):  # only removed when no other stage left work behind
            work.parent.rmdir()

    def _keep_user_files(self, stage_dir: Path) -> None:
        """Warn about the files a user added to a reused stage (they stay), and set aside edited ``extras`` so that
        the stage verifies again (the evaluation writes the run's own)."""
        manifest = read_manifest(stage_dir)
        extras = kept_files.harmless_extras(stage_dir, manifest["files"])
        if extras:
            logger.warning("%s: reusing it; left alone the files in it the run did not write: %s", stage_dir,
                           kept_files.in_brief(extras))
        edited = changed_files(stage_dir, {name: manifest["files"][name] for name in self.extras
                                           if name in manifest["files"]})
        if edited:
            self._set_aside(stage_dir, manifest, edited)

    def _set_aside(self, stage_dir: Path, manifest: dict[str, Any], edited: list[str]) -> None:
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
        add_to_manifest(partial, {**manifest, "files": {k: v for k, v in manifest["files"].items()
                                                        if k not in edited}}, [])
        self.swap(partial, stage_dir)


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
