"""A writer killed (SIGKILL) at any of 20 points of an ingest or a re-index leaves the previous
generation searchable as it was, and a re-run completes with nothing lost or doubled
(tests/kill_points.py); what a crash leaves in `staging/` never breaks the next ingest."""

from __future__ import annotations

import json
import zipfile
from pathlib import Path

import numpy as np
import pytest
from kill_points import POINTS, run_kill_points
from pdfs import lorem, make_pdf

from indexes import IndexLocked, IndexStore, text_hash
from rag.ingest import _stage, ingest


@pytest.mark.slow
def test_kill_9_at_20_points_of_ingest_and_reindex(tmp_path: Path, embedder) -> None:
    assert len(POINTS) == 20 and len({p.name for p in POINTS}) == 20
    report = run_kill_points(tmp_path, embedder)
    assert not report.failures, json.dumps(report.failures, indent=1)
    assert (report.survived, report.total) == (20, 20)


def test_truncated_staged_files_and_partial_leftovers_do_not_break_ingest(corpus, settings, embedder) -> None:
    ingest([corpus], settings, progress=False, embedder=embedder)
    make_pdf(corpus / "new.pdf", [lorem("harbour", 40)])
    staging = settings.index / "staging"
    # a complete staged file cut in half, one under the old temporary name, a partial leftover
    _stage(staging, "cut", settings.model, ["h1", "h2"], np.ones((2, 384), dtype=np.float32))
    data = (staging / "cut.npz").read_bytes()
    (staging / "cut.npz").write_bytes(data[: len(data) // 2])
    (staging / "old.tmp.npz").write_bytes(data[:100])
    (staging / ".abc.part").write_bytes(data[:10])
    with pytest.raises(zipfile.BadZipFile):
        np.load(staging / "cut.npz")["hashes"]

    report = ingest([corpus], settings, progress=False, embedder=embedder)
    assert report.count("added") == 1 and not report.failed
    assert not list(staging.glob("*"))  # all of it went with the publish
    with IndexStore(settings.index).open() as snap:
        assert "new.pdf" in {d.name for d in snap.documents()}


def test_staging_writes_only_under_a_name_the_loader_skips(tmp_path: Path, settings, embedder) -> None:
    """A kill at any moment of `_stage` leaves no `*.npz` but complete ones; a complete staged
    file is reused."""
    staging = tmp_path / "staging"
    vector = embedder.encode(["Zebras migrate across the Serengeti"])[0]
    _stage(staging, "key", settings.model, [text_hash("x")], vector[None])
    assert [p.name for p in staging.iterdir()] == ["key.npz"]
    with np.load(staging / "key.npz") as data:
        assert list(data["hashes"]) == [text_hash("x")] and data["vectors"].shape == (1, 384)


def test_the_lock_message_for_clients_names_no_path_or_pid(settings) -> None:
    with IndexStore(settings.index).writer():
        with pytest.raises(IndexLocked) as caught:
            with IndexStore(settings.index).writer():
                pass
    err = caught.value
    assert "pid" in str(err) and str(settings.index) in str(err)  # the terminal gets both
    assert "pid" not in err.public and "/" not in err.public
