"""A writer killed at any moment leaves the previous generation usable; a re-run completes."""

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from pdfs import lorem, make_pdf

from indexes import IndexStore
from rag.ingest import ingest
from rag.retrieval import Retriever


def start_ingest(folder: Path, index: Path) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "rag.cli", "ingest", str(folder), "--index", str(index), "-q"],
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
    )


def add_batch(folder: Path, n: int) -> None:
    for i in range(n):
        make_pdf(folder / f"batch{i:02d}.pdf", [lorem(f"topic{i}", 60) for _ in range(3)])


def test_kill_mid_ingest_keeps_old_generation_and_rerun_completes(corpus, settings, embedder) -> None:
    ingest([corpus], settings, progress=False, embedder=embedder)
    old_generation = IndexStore(settings.index).current_name()
    add_batch(corpus, 24)  # several hundred chunks: several seconds of embedding
    staging = settings.index / "staging"

    proc = start_ingest(corpus, settings.index)
    deadline = time.time() + 240
    while not any(staging.glob("*.npz")) and proc.poll() is None and time.time() < deadline:
        time.sleep(0.05)
    assert proc.poll() is None, f"ingest ended before it could be killed: {proc.stderr.read()}"
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()

    store = IndexStore(settings.index)
    assert store.current_name() == old_generation
    assert {d.name for d in store.open().documents()} == {"plants.pdf", "space.pdf", "zoo.pdf"}
    assert Retriever(settings.index, embedder).search("Europa salty ocean", k=1)[0].doc == "space.pdf"

    rerun = ingest([corpus], settings, progress=False, embedder=embedder)  # the lock was freed
    assert rerun.count("added") == 24 and rerun.chunks_reused > 0  # staged embeddings reused
    assert len(store.open().documents()) == 27
    assert not any(staging.glob("*"))


def test_kills_at_many_moments_never_expose_half_an_index(corpus, settings, embedder) -> None:
    ingest([corpus], settings, progress=False, embedder=embedder)
    add_batch(corpus, 6)
    before, after = {"plants.pdf", "space.pdf", "zoo.pdf"}, None
    for delay in (1.0, 4.0, 6.0, 7.0, 8.0, 9.0, 11.0):
        proc = start_ingest(corpus, settings.index)
        time.sleep(delay)
        proc.kill()
        finished = proc.wait() == 0
        snap = IndexStore(settings.index).open()  # always one complete generation
        names = {d.name for d in snap.documents()}
        assert names == before or names == before | {f"batch{i:02d}.pdf" for i in range(6)}
        assert snap.dense.ntotal == snap.n_chunks == len(snap.records.all_chunks())
        if finished or names != before:
            after = names
            break
    final = ingest([corpus], settings, progress=False, embedder=embedder)
    assert len(IndexStore(settings.index).open().documents()) == 9
    assert after is not None or final.count("added") == 6
