"""Checksummed model directories: ``manifest.json`` lists the sha256 of every file, written last.

A directory is a finished artifact only when its manifest exists and every checksum matches; loading
(CLI, Python API, web service) refuses anything else, so a half-written or altered model is never used.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from pathlib import Path
from typing import Any

from distilora.versions import library_versions

MANIFEST = "manifest.json"


class ArtifactError(ValueError):
    """A model directory is incomplete or does not match its manifest."""


def sha256_file(path: Path, chunk: int = 1 << 20) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        while block := handle.read(chunk):
            digest.update(block)
    return digest.hexdigest()


def _files(directory: Path) -> list[Path]:
    return sorted(p for p in directory.rglob("*") if p.is_file() and p.name != MANIFEST)


def write_manifest(directory: Path, info: dict[str, Any]) -> dict[str, Any]:
    """Checksum every file under ``directory`` and write the manifest (the last file of a finished stage)."""
    manifest = {
        **info,
        "files": {str(p.relative_to(directory)): sha256_file(p) for p in _files(directory)},
        "versions": library_versions(),
    }
    (directory / MANIFEST).write_text(json.dumps(manifest, indent=1))
    return manifest


def verify_manifest(directory: Path) -> dict[str, Any]:
    """Return the manifest if every listed file is present and unchanged; raise :class:`ArtifactError` otherwise."""
    file = directory / MANIFEST
    if not file.exists():
        raise ArtifactError(
            f"{directory}: incomplete model directory (no {MANIFEST}); it was not finished. "
            "Run the same `distilora run` command again to finish it."
        )
    try:
        manifest = json.loads(file.read_text())
        listed = manifest["files"]
    except (ValueError, KeyError) as error:
        raise ArtifactError(f"{file}: unreadable manifest ({error}); re-run the stage") from error
    for name, expected in listed.items():
        path = directory / name
        if not path.exists():
            raise ArtifactError(f"{directory}: {name} is missing; the model directory is incomplete")
        if sha256_file(path) != expected:
            raise ArtifactError(
                f"{directory}: checksum mismatch for {name}; the file was changed or corrupted. "
                "Delete the directory and re-run the stage."
            )
    return manifest


def write_atomic(path: Path, text: str) -> None:
    """Write to a temporary file beside ``path``, then rename over it: readers never see half a file."""
    handle, temp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(handle, "w", encoding="utf-8") as stream:
            stream.write(text)
        os.replace(temp, path)
    except BaseException:
        Path(temp).unlink(missing_ok=True)
        raise
