"""Uploaded PDFs: checked, named safely and written into the upload folder atomically."""

from __future__ import annotations

import os
import re
import time
import uuid
from pathlib import Path

from fastapi import HTTPException, UploadFile
from starlette.concurrency import run_in_threadpool

PDF_MAGIC = b"%PDF-"
_UNSAFE = re.compile(r"[^A-Za-z0-9._ -]+")
MAX_NAME_CHARS = 200


def safe_filename(name: str | None) -> str:
    """The file's base name with anything but letters, digits, ._- and spaces replaced, cut to
    MAX_NAME_CHARS, ending in .pdf."""
    base = Path((name or "").replace("\\", "/")).name
    base = _UNSAFE.sub("_", base).strip(" .")
    if not base:
        raise HTTPException(422, "the upload needs a file name")
    stem, suffix = (base[:-4], base[-4:]) if base.lower().endswith(".pdf") else (base, ".pdf")
    # room for the temporary name (".NAME.xxxxxxxx.part") within the 255 bytes a file name may take
    return (stem[:MAX_NAME_CHARS].rstrip(" .") or "upload") + suffix


async def save_upload(upload: UploadFile, folder: Path, max_mb: int) -> Path:
    """Save one upload as `folder`/its safe name; 413 when too large, 415 when not a PDF."""
    name = safe_filename(upload.filename)
    data = await upload.read(max_mb * 1024 * 1024 + 1)
    if len(data) > max_mb * 1024 * 1024:
        raise HTTPException(413, f"{name} is larger than the {max_mb} MB limit")
    if not data.startswith(PDF_MAGIC):
        raise HTTPException(415, f"{name} is not a PDF (it does not start with %PDF-)")
    target = folder / name
    await run_in_threadpool(_write_atomically, target, data)  # megabytes to disk: off the event loop
    return target


def _write_atomically(target: Path, data: bytes) -> None:
    """Written aside, synced, then renamed: neither a re-index nor a crash (the machine's
    included) ever leaves half a file under the PDF's name."""
    partial = target.with_name(f".{target.name}.{uuid.uuid4().hex[:8]}.part")
    try:
        with open(partial, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(partial, target)
    finally:
        partial.unlink(missing_ok=True)
    fd = os.open(target.parent, os.O_RDONLY)
    try:
        os.fsync(fd)  # the rename itself
    finally:
        os.close(fd)


def remove_partials(folder: Path, older_than_s: float = 3600.0) -> None:
    """Remove the `.NAME.part` files of uploads a crash cut off; only old ones, since another
    server process on the same folder may be writing one right now."""
    for path in folder.glob(".*.part"):
        try:
            if time.time() - path.stat().st_mtime > older_than_s:
                path.unlink(missing_ok=True)
        except FileNotFoundError:
            pass
