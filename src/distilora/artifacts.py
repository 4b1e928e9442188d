"""Checksummed model directories: ``manifest.json`` lists the sha256 of every file, written last.

A directory is a finished artifact only when its manifest lists its config, weights and tokenizer, every listed
file is a regular file whose checksum matches, and nothing unlisted lies beside them (an extra ``adapter_config.json``
or weight shard would change what ``from_pretrained`` loads). Loading (CLI, Python API, web service) refuses
anything else, and loads from a private copy of exactly the bytes it hashed.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path, PurePosixPath
from typing import Any

from distilora.versions import library_versions

MANIFEST = "manifest.json"
REQUIRED = {
    "config": ("config.json",),
    "weights": (".safetensors", ".onnx"),
    "tokenizer": ("tokenizer.json", "vocab.txt", "tokenizer_config.json", "spiece.model", "vocab.json"),
}
"""What a manifest must list: a name ending in one of these, per kind."""


class ArtifactError(ValueError):
    """A model directory is incomplete or does not match its manifest."""


def sha256_bytes(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def sha256_file(path: Path, chunk: int = 1 << 20) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        while block := handle.read(chunk):
            digest.update(block)
    return digest.hexdigest()


def _files(directory: Path) -> list[Path]:
    """Every entry below ``directory`` but the manifest: files, and symlinks (which are refused, not followed)."""
    return sorted(p for p in directory.rglob("*") if (p.is_symlink() or p.is_file()) and p.name != MANIFEST)


def fsync_directory(directory: Path) -> None:
    """Make renames and new entries in ``directory`` durable."""
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def fsync_tree(directory: Path) -> None:
    """fsync every file below ``directory``, then every folder in it (deepest first), then itself."""
    folders = [directory]
    for path in directory.rglob("*"):
        if path.is_symlink():
            continue
        if path.is_dir():
            folders.append(path)
        else:
            with path.open("rb") as handle:
                os.fsync(handle.fileno())
    for folder in sorted(folders, key=lambda p: len(p.parts), reverse=True):
        fsync_directory(folder)


def write_manifest(directory: Path, info: dict[str, Any]) -> dict[str, Any]:
    """Checksum every file under ``directory`` and write the manifest (the last file of a finished stage)."""
    manifest = {
        **info,
        "files": {p.relative_to(directory).as_posix(): sha256_file(p) for p in _files(directory)},
        "versions": library_versions(),
    }
    _check_listing(directory, manifest["files"])
    write_atomic(directory / MANIFEST, json.dumps(manifest, indent=1))
    return manifest


def add_to_manifest(directory: Path, manifest: dict[str, Any], names: list[str]) -> dict[str, Any]:
    """Write ``manifest`` (one already verified; its info and checksums kept as they are) into ``directory``, with
    the files ``names`` hashed anew from there: what is added is listed, and nothing else is re-blessed."""
    files = {**manifest["files"], **{name: sha256_file(_listed_file(directory, name)) for name in names}}
    updated = {**manifest, "files": dict(sorted(files.items()))}
    _check_listing(directory, updated["files"])
    write_atomic(directory / MANIFEST, json.dumps(updated, indent=1))
    return updated


def read_manifest(directory: Path) -> dict[str, Any]:
    """The manifest of ``directory``, checked for shape and for listing a complete model; no checksums yet."""
    file = directory / MANIFEST
    if not file.is_file():
        raise ArtifactError(
            f"{directory}: incomplete model directory (no {MANIFEST}); it was not finished. "
            "Run the same `distilora run` command again to finish it."
        )
    try:
        manifest = json.loads(file.read_text(encoding="utf-8"))
    except (ValueError, UnicodeDecodeError) as error:
        raise ArtifactError(f"{file}: unreadable manifest ({error}); re-run the stage") from error
    listed = manifest.get("files") if isinstance(manifest, dict) else None
    if not isinstance(listed, dict) or not all(isinstance(k, str) and isinstance(v, str) for k, v in listed.items()):
        raise ArtifactError(f"{file}: malformed manifest (no file list); re-run the stage")
    _check_listing(directory, listed)
    return manifest


def _check_listing(directory: Path, listed: dict[str, str]) -> None:
    for kind, endings in REQUIRED.items():
        if not any(name.endswith(endings) for name in listed):
            raise ArtifactError(f"{directory}: the manifest lists no {kind} file; the model directory is incomplete")
    for name in listed:
        parts = PurePosixPath(name).parts
        if PurePosixPath(name).is_absolute() or ".." in parts or not parts:
            raise ArtifactError(f"{directory}: the manifest names {name!r}, which is outside the model directory")


def verify_manifest(directory: Path) -> dict[str, Any]:
    """Return the manifest if every listed file is present, regular and unchanged, and nothing unlisted is there;
    raise :class:`ArtifactError` otherwise."""
    manifest = read_manifest(directory)
    for name, expected in manifest["files"].items():
        if sha256_file(_listed_file(directory, name)) != expected:
            raise _mismatch(directory, name)
    _refuse_unlisted(directory, manifest["files"])
    return manifest


def _listed_file(directory: Path, name: str) -> Path:
    path = directory / name
    if path.is_symlink():
        raise ArtifactError(f"{directory}: {name} is a symbolic link; only regular files are loaded")
    if not path.is_file():
        raise ArtifactError(f"{directory}: {name} is missing; the model directory is incomplete")
    return path


def _mismatch(directory: Path, name: str) -> ArtifactError:
    return ArtifactError(f"{directory}: checksum mismatch for {name}; the file was changed or corrupted. "
                         "Delete the directory and re-run the stage.")


def _refuse_unlisted(directory: Path, listed: dict[str, str]) -> None:
    for path in _files(directory):
        name = path.relative_to(directory).as_posix()
        if name not in listed:
            raise ArtifactError(f"{directory}: {name} is not in the manifest; remove it (an unlisted file could "
                                "change what is loaded)")


@contextlib.contextmanager
def verified_snapshot(directory: Path) -> Iterator[Path]:
    """A private temporary copy of ``directory``'s listed files, made from the very bytes that were checksummed:
    what is loaded from it is what was verified, even if the directory changes meanwhile."""
    manifest = read_manifest(directory)
    _refuse_unlisted(directory, manifest["files"])
    with tempfile.TemporaryDirectory(prefix="distilora-verified-") as temp:
        for name, expected in manifest["files"].items():
            data = _listed_file(directory, name).read_bytes()
            if sha256_bytes(data) != expected:
                raise _mismatch(directory, name)
            target = Path(temp) / name
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(data)
        yield Path(temp)


def write_atomic(path: Path, text: str) -> None:
    """Write to a temporary file beside ``path``, fsync it, rename it over ``path`` and fsync the folder: readers
    never see half a file, and a power cut leaves the old or the new one."""
    handle, temp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(handle, "w", encoding="utf-8") as stream:
            stream.write(text)
            stream.flush()
            os.fsync(stream.fileno())
        os.replace(temp, path)
        fsync_directory(path.parent)
    except BaseException:
        Path(temp).unlink(missing_ok=True)
        raise

