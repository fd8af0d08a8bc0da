"""What the storage layer raises: one base class, so a command or a handler catches them all."""

from __future__ import annotations

from pathlib import Path


class StoreError(Exception):
    """The index cannot be used as asked (missing, unreadable, wrong settings)."""


class IndexLocked(StoreError):
    """Another process is writing to this index.

    `str()` names the index and the holder's PID, for the person at the terminal; `public` says
    the same without them, for clients of a server that must not learn its paths or processes."""

    public = "the index is being written by another process; wait for it to finish and try again"

    def __init__(self, root: Path | str = "", holder: str = "?"):
        self.root, self.holder = str(root), holder
        super().__init__(
            f"index {root} is locked: another process (pid {holder}) is writing to it; "
            "wait for it to finish and try again"
        )


class MilvusUnavailable(StoreError):
    """The Milvus URI cannot be opened: no server there, or a milvus-lite file another process holds."""
