"""Checksummed model directories: ``manifest.json`` lists the sha256 of every file, written last.

A directory is a finished artifact only when its manifest lists its config, weights and tokenizer, every listed
file is a regular file whose checksum matches, and no unlisted file a loader could read lies beside them (an extra
``adapter_config.json`` or weight shard would change what ``from_pretrained`` loads). Other unlisted files (a user's
``NOTES.md``, ``.gitattributes``, a ``.git/`` folder) are left alone. Loading (CLI, Python API, web service) refuses
anything else, and loads from a private copy of exactly the bytes it hashed; a directory swapped into place while it
is read (the evaluation adding its calibration) is read again, not blamed.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import secrets
import shutil
import tempfile
import time
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
LOADABLE = (".json", ".safetensors", ".bin", ".pt", ".pth", ".ckpt", ".h5", ".msgpack", ".onnx", ".onnx_data",
            ".data", ".gguf", ".model", ".txt", ".py", ".pkl", ".pickle", ".joblib", ".npy", ".npz", ".jinja",
            ".tiktoken")
"""Endings of files that transformers, PEFT, tokenizers or onnxruntime could read from a model directory: such a
file may not lie there unlisted. Any other unlisted file, and anything hidden (``.git/``), is the user's."""
SWAPPED_SUFFIX = ".old"
"""Where a finished directory sits for a moment while its successor is renamed into place."""
SWAP_WAIT_SECONDS = 5.0
"""How long loading waits for a directory that is being swapped, and reads it again after a swap."""
SWAP_POLL_SECONDS = 0.02


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


def could_be_loaded(name: str) -> bool:
    """Whether an unlisted file ``name`` (relative, POSIX) could change what a loader reads (:data:`LOADABLE`)."""
    path = PurePosixPath(name)
    return not any(part.startswith(".") for part in path.parts) and path.name.lower().endswith(LOADABLE)


def unlisted_files(directory: Path, listed: dict[str, str]) -> list[str]:
    """The relative names of the files (and symbolic links) below ``directory`` that ``listed`` does not name."""
    names = (path.relative_to(directory).as_posix() for path in _files(directory))
    return [name for name in names if name not in listed]


def changed_files(directory: Path, listed: dict[str, str]) -> list[str]:
    """The names in ``listed`` whose file is missing, not a regular file, or has another checksum."""
    changed = []
    for name, expected in listed.items():
        try:
            if sha256_file(_listed_file(directory, name)) != expected:
                changed.append(name)
        except (ArtifactError, OSError):
            changed.append(name)
    return changed


def fsync_file(path: Path) -> None:
    with path.open("rb") as handle:
        os.fsync(handle.fileno())


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
            fsync_file(path)
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


def verify_manifest(directory: Path, unchecked: tuple[str, ...] = ()) -> dict[str, Any]:
    """Return the manifest if every listed file (but those named in ``unchecked``) is present, regular and unchanged,
    and no unlisted file a loader could read is there; raise :class:`ArtifactError` otherwise."""
    manifest = read_manifest(directory)
    for name, expected in manifest["files"].items():
        if name not in unchecked and sha256_file(_listed_file(directory, name)) != expected:
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
    for name in unlisted_files(directory, listed):
        if could_be_loaded(name):
            raise ArtifactError(f"{directory}: {name} is not in the manifest; remove it (an unlisted file could "
                                "change what is loaded)")


@contextlib.contextmanager
def verified_snapshot(directory: Path, wait: float = SWAP_WAIT_SECONDS) -> Iterator[Path]:
    """A private temporary copy of ``directory``'s listed files, made from the very bytes that were checksummed:
    what is loaded from it is what was verified, even if the directory changes meanwhile.

    A directory swapped into place while it was read (its inode or manifest changed, or it was moved aside for a
    moment) is read again, for up to ``wait`` seconds; only a directory that stayed put is blamed.
    """
    deadline = time.monotonic() + wait
    with tempfile.TemporaryDirectory(prefix="distilora-verified-") as temp:
        while True:
            wait_for_swap(directory, max(0.0, deadline - time.monotonic()))
            before = _identity(directory)
            try:
                _copy_verified(directory, Path(temp))
                break
            except (ArtifactError, OSError):
                if time.monotonic() >= deadline or not _swapped_since(directory, before):
                    raise
            shutil.rmtree(temp)
            Path(temp).mkdir()
            time.sleep(SWAP_POLL_SECONDS)
        yield Path(temp)


def _copy_verified(directory: Path, target: Path) -> None:
    manifest = read_manifest(directory)
    _refuse_unlisted(directory, manifest["files"])
    for name, expected in manifest["files"].items():
        data = _listed_file(directory, name).read_bytes()
        if sha256_bytes(data) != expected:
            raise _mismatch(directory, name)
        copy = target / name
        copy.parent.mkdir(parents=True, exist_ok=True)
        copy.write_bytes(data)


def _identity(directory: Path) -> tuple[int, ...] | None:
    """What changes when a directory is swapped: its inode, and its manifest's inode and mtime (None: not there)."""
    try:
        folder, manifest = os.stat(directory), os.stat(directory / MANIFEST)
    except OSError:
        return None
    return folder.st_dev, folder.st_ino, manifest.st_ino, manifest.st_mtime_ns


def _swapped_since(directory: Path, before: tuple[int, ...] | None) -> bool:
    """Whether ``directory`` changed identity since ``before`` (or, absent then, a swap has it moved aside)."""
    if before is None:
        return _swapped_sibling(directory).exists()
    return _identity(directory) != before


def _swapped_sibling(directory: Path) -> Path:
    return directory.with_name(directory.name + SWAPPED_SUFFIX)


def wait_for_swap(directory: Path, wait: float = SWAP_WAIT_SECONDS) -> None:
    """Return once ``directory`` is in place, waiting up to ``wait`` seconds while a swap has it moved aside (its
    ``.old`` sibling is there and it is not); at once otherwise."""
    deadline = time.monotonic() + wait
    swapped = _swapped_sibling(directory)
    while not directory.exists() and swapped.exists() and time.monotonic() < deadline:
        time.sleep(SWAP_POLL_SECONDS)


def write_atomic(path: Path, text: str) -> None:
    """Write to a temporary file beside ``path``, fsync it, rename it over ``path`` and fsync the folder: readers
    never see half a file, and a power cut leaves the old or the new one. The file gets the mode a plain ``open()``
    gives a new file (0666 less the umask), not a temporary file's 0600."""
    handle, temp = _create_beside(path)
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


def _create_beside(path: Path) -> tuple[int, str]:
    """A new, empty, uniquely named hidden file beside ``path``, opened for writing; created with mode 0666 so that
    the umask decides its permissions, as for any file a program creates."""
    while True:
        temp = str(path.with_name(f".{path.name}.{secrets.token_hex(6)}.tmp"))
        with contextlib.suppress(FileExistsError):
            return os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o666), temp
