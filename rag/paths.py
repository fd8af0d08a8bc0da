"""Where ragstack keeps things on disk, following the XDG base directories."""

from __future__ import annotations

import os
from pathlib import Path


def data_dir() -> Path:
    """What the user made and would miss: the default index, the sessions."""
    return Path(os.environ.get("XDG_DATA_HOME") or Path.home() / ".local" / "share") / "ragstack"


def cache_dir(kind: str) -> Path:
    """What can be rebuilt: converted models ("models"), ONNX graphs ("onnx"), eval indexes ("eval")."""
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "ragstack" / kind
