"""Collections: several indexes side by side, each with its own documents and sessions.

The default collection is the index the settings name (`--index`, RAG_INDEX), so a setup without
collections works as before. A named one lives in its own folder:

    <collections_dir>/NAME/index              its index (generations, staging, lock)
    <collections_dir>/NAME/sessions.sqlite    its conversations

`collections_dir` defaults to a `collections` folder beside the default index.
"""

from __future__ import annotations

import re
from pathlib import Path

DEFAULT = "default"
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")


def check_name(name: str) -> str:
    """The name, if it can name a collection folder; ValueError (with the rule) otherwise."""
    if not _NAME.match(name) or ".." in name:
        raise ValueError(
            f"invalid collection name {name[:80]!r}: "
            "1-64 letters, digits or _.- starting with a letter or digit"
        )
    return name


def collections_root(settings) -> Path:
    return settings.collections_dir or settings.index.parent / "collections"


def in_collection(settings, name: str | None):
    """`settings` with the index and session file of collection `name` (None or "default": as
    they are)."""
    if name in (None, "", DEFAULT):
        return settings
    folder = collections_root(settings) / check_name(name)
    return settings.model_copy(
        update={"index": folder / "index", "sessions": folder / "sessions.sqlite", "collection": name}
    )


def list_collections(settings) -> list[str]:
    """The default collection and every named one that has a folder."""
    root = collections_root(settings)
    if not root.is_dir():
        return [DEFAULT]
    named = sorted(p.name for p in root.iterdir() if p.is_dir() and _NAME.match(p.name))
    return [DEFAULT, *(n for n in named if n != DEFAULT)]
