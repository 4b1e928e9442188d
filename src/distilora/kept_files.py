"""What in a stage directory the run did not write, and how a rerun keeps it.

The run writes a stage's files and lists them, with their checksums, in its manifest. Anything else there (a user's
``NOTES.md``, ``.gitattributes``, a ``.git/`` folder) and any listed file whose bytes changed since (an edited model
card) is the user's: a rerun never deletes it. A stage replaced by a new one is removed only when everything of the
user's in it is also in its successor; otherwise it is moved aside to ``NAME.old-<time>/``.
"""

from __future__ import annotations

import filecmp
import logging
import os
import shutil
from datetime import UTC, datetime
from pathlib import Path, PurePosixPath

from distilora.artifacts import ArtifactError, changed_files, could_be_loaded, read_manifest, unlisted_files

logger = logging.getLogger(__name__)

SET_ASIDE = ".old-"
"""``NAME.old-<time>``: a replaced stage that held files the run did not write."""
EDITED = ".edited-"
"""``NAME.edited-<time>``: a file the run rewrites (the model card, calibration.json), kept as the user left it."""


def stamp() -> str:
    """The current UTC time, as a file name part: ``20250131T120000Z``."""
    return datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")


def is_set_aside(name: str) -> bool:
    return SET_ASIDE in name


def user_files(directory: Path) -> list[str]:
    """Relative names of the files below ``directory`` the run did not write: unlisted in its manifest, or listed
    with other bytes; every file when it has no readable manifest."""
    try:
        listed = read_manifest(directory)["files"]
    except ArtifactError:
        return sorted(path.relative_to(directory).as_posix() for path in directory.rglob("*")
                      if path.is_file() or path.is_symlink())
    return sorted(unlisted_files(directory, listed) + changed_files(directory, listed))


def harmless_extras(directory: Path, listed: dict[str, str]) -> list[str]:
    """The unlisted files below ``directory`` that no loader reads (the ones a finished stage may hold)."""
    return [name for name in unlisted_files(directory, listed) if not could_be_loaded(name)]


def in_brief(names: list[str]) -> str:
    """``.git/, NOTES.md``: each top-level entry once (a folder with a slash)."""
    entries = dict.fromkeys(PurePosixPath(name).parts[0] + ("/" if len(PurePosixPath(name).parts) > 1 else "")
                            for name in names)
    return ", ".join(entries)


def retire(old: Path, current: Path) -> None:
    """Remove ``old``, a stage ``current`` replaced, unless it holds files the run did not write that ``current``
    does not hold too (the same file, or the same bytes at the same place): then move it aside, with a warning."""
    if not old.exists():
        return
    kept = _inodes(current)
    lost = [name for name in user_files(old) if not _kept(old / name, current / name, kept)]
    if not lost:
        shutil.rmtree(old, ignore_errors=True)
        return
    aside = free_name(current.with_name(f"{current.name}{SET_ASIDE}{stamp()}"))
    old.rename(aside)
    logger.warning("%s: replaced; the previous one held files the run did not write (%s), so it was moved to %s "
                   "rather than deleted", current, in_brief(lost), aside.name)


def free_name(path: Path) -> Path:
    """``path``, or ``path-2``, ``path-3`` … if it is taken."""
    candidate, number = path, 1
    while candidate.exists() or candidate.is_symlink():
        number += 1
        candidate = path.with_name(f"{path.name}-{number}")
    return candidate


def _inodes(directory: Path) -> set[tuple[int, int]]:
    if not directory.is_dir():
        return set()
    found = set()
    for path in directory.rglob("*"):
        if path.is_file() and not path.is_symlink():
            info = path.stat()
            found.add((info.st_dev, info.st_ino))
    return found


def _kept(file: Path, counterpart: Path, inodes: set[tuple[int, int]]) -> bool:
    """Whether ``file`` survives in the successor: hard-linked anywhere in it, or the same bytes at its place."""
    if file.is_symlink():
        return counterpart.is_symlink() and os.readlink(file) == os.readlink(counterpart)
    info = file.stat()
    if (info.st_dev, info.st_ino) in inodes:
        return True
    return counterpart.is_file() and not counterpart.is_symlink() and filecmp.cmp(file, counterpart, shallow=False)
