"""The package's version (from its installed metadata) and the library versions recorded with every artifact."""

from __future__ import annotations

from importlib import metadata

try:
    __version__ = metadata.version("distilora")
except metadata.PackageNotFoundError:  # running from a source tree that was never installed
    __version__ = "0+unknown"


def library_versions() -> dict[str, str]:
    """distilora, torch, transformers and peft versions, as written into manifests and results.json."""
    import peft
    import torch
    import transformers

    return {"distilora": __version__, "torch": torch.__version__, "transformers": transformers.__version__,
            "peft": peft.__version__}
