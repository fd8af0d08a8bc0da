"""A writer killed at any moment leaves the previous generation usable; a re-run completes.

`rag ingest` runs in a child process that SIGKILLs itself at a chosen point (the functions it
would call there are replaced before the command starts), so each test knows exactly what the
crash interrupted instead of guessing from a sleep.
"""

import signal
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from pdfs import lorem, make_pdf

from indexes import IndexStore, milvus, text_hash
from rag.ingest import ingest
from rag.retrieval import Retriever
from rag.settings import Settings

# Runs `rag ARGS` after arranging a SIGKILL (no clean-up, no flush, as a power cut or the OOM
# killer) at the point named by argv[1]:
#   embedding   when the embedder is called a second time: one group of vectors is staged
#   publish     when the writer starts publishing: every vector is staged, nothing written
#   rename      when the new generation is complete on disk, before it is renamed into place
#   swap        when it is in place, before CURRENT names it
#   collect     after CURRENT names it, before old generations and staging are cleared
KILL_AT = """
import os, signal, sys
import indexes.store as store
from rag.embedding import Embedder

def die(*args, **kwargs):
    os.kill(os.getpid(), signal.SIGKILL)

point = sys.argv.pop(1)
if point == "embedding":
    encode, calls = Embedder.encode, []
    def encode_then_die(self, texts, *args, **kwargs):
        calls.append(len(texts))
        if len(calls) == 2:
            die()
        return encode(self, texts, *args, **kwargs)
    Embedder.encode = encode_then_die
elif point == "publish":
    store.Writer.publish = die
elif point == "rename":
    store._fsync_tree = die
elif point == "swap":
    store._atomic_write = die
elif point == "collect":
    store.Writer._collect_garbage = die
else:
    raise SystemExit(f"unknown kill point {point}")
from rag.cli import app
app(prog_name="rag")
"""
ORIGINAL = {"plants.pdf", "space.pdf", "zoo.pdf"}


@pytest.fixture
def settings(store_settings) -> Settings:
    """Every test here runs against both index backends (local files and Milvus)."""
    return store_settings


def ingest_killed_at(point: str, folder: Path, settings: Settings) -> None:
    """`rag ingest` of `folder` into `settings.index`, killed at `point`; fails if it got through
    without dying. The index backend is the settings' (a new index takes it from the flags)."""
    store = ["--backend", settings.index_backend]
    if settings.milvus_uri:
        store += ["--milvus-uri", settings.milvus_uri]
    done = subprocess.run(
        [sys.executable, "-c", KILL_AT, point, "ingest", str(folder), "--index", str(settings.index), "-q",
         *store],
        capture_output=True, text=True, timeout=600,
    )
    assert done.returncode == -signal.SIGKILL, f"not killed at {point}: {done.stdout}{done.stderr}"


def add_batch(folder: Path, n: int) -> set[str]:
    """`n` PDFs of three pages, about 30 chunks of 64 tokens each, every chunk's text its own."""
    for i in range(n):
        make_pdf(folder / f"batch{i:02d}.pdf", [lorem(f"topic{i}x{p}", 45) for p in range(3)])
    return {f"batch{i:02d}.pdf" for i in range(n)}


def staged_hashes(index: Path) -> set[str]:
    hashes: set[str] = set()
    for path in (index / "staging").glob("*.npz"):
        with np.load(path) as data:
            hashes |= {str(h) for h in data["hashes"]}
    return hashes


class Counting:
    """The real embedder, keeping the texts it is asked to embed."""

    def __init__(self, embedder):
        self.embedder, self.texts = embedder, []

    def __getattr__(self, name):
        return getattr(self.embedder, name)

    def encode(self, texts, *args, **kwargs):
        self.texts += texts
        return self.embedder.encode(texts, *args, **kwargs)


def assert_intact(index: Path, generation: str | None, names: set[str], embedder) -> None:
    """The published generation is `generation`, complete and searchable, holding `names`."""
    store = IndexStore(index)
    assert store.current_name() == generation
    with store.open() as snap:
        assert {d.name for d in snap.documents()} == names
        assert snap.dense.ntotal == snap.n_chunks == len(snap.records.all_chunks())
    assert Retriever(index, embedder).search("Europa salty ocean", k=1)[0].doc == "space.pdf"


def test_kill_mid_embedding_keeps_old_generation_and_rerun_embeds_only_the_rest(
    corpus, settings, embedder
) -> None:
    # small chunks: the batch makes more than one embedding group (rag.ingest.EMBED_GROUP) quickly
    settings = settings.model_copy(update={"chunk_size": 64, "chunk_overlap": 8})
    ingest([corpus], settings, progress=False, embedder=embedder)
    old = IndexStore(settings.index).current_name()
    batch = add_batch(corpus, 12)

    ingest_killed_at("embedding", corpus, settings)
    assert_intact(settings.index, old, ORIGINAL, embedder)
    staged = staged_hashes(settings.index)
    assert staged  # the first group's vectors survived the crash

    counting = Counting(embedder)
    rerun = ingest([corpus], settings, progress=False, embedder=counting)  # the lock was freed
    assert rerun.count("added") == 12 and rerun.generation != old
    assert rerun.chunks_embedded == len(counting.texts) > 0  # the groups the crash cut off
    assert not {text_hash(t) for t in counting.texts} & staged  # no staged vector computed again
    assert rerun.chunks_reused >= len(staged)
    assert_intact(settings.index, rerun.generation, ORIGINAL | batch, embedder)
    assert not any((settings.index / "staging").glob("*"))


def test_kills_while_publishing_never_expose_half_an_index(corpus, settings, embedder) -> None:
    ingest_killed_at("publish", corpus, settings)  # the very first run: nothing to keep
    assert IndexStore(settings.index).current_name() is None and staged_hashes(settings.index)
    counting = Counting(embedder)
    first = ingest([corpus], settings, progress=False, embedder=counting)
    assert first.chunks_embedded == 0 and counting.texts == []  # all of it was staged
    old = first.generation
    assert_intact(settings.index, old, ORIGINAL, embedder)
    batch = add_batch(corpus, 4)
    generations = settings.index / "generations"

    ingest_killed_at("publish", corpus, settings)  # every new vector staged, none published
    assert_intact(settings.index, old, ORIGINAL, embedder)
    staged = staged_hashes(settings.index)

    ingest_killed_at("rename", corpus, settings)  # a complete generation under a temporary name
    assert_intact(settings.index, old, ORIGINAL, embedder)
    assert [p.name for p in generations.glob(".tmp-*")] and staged_hashes(settings.index) == staged

    ingest_killed_at("swap", corpus, settings)  # renamed into place, CURRENT not yet swapped
    assert_intact(settings.index, old, ORIGINAL, embedder)
    unpublished = sorted(p.name for p in generations.glob("gen-*") if p.name > old)
    assert len(unpublished) == 1 and not list(generations.glob(".tmp-*"))  # the leftover was removed

    ingest_killed_at("collect", corpus, settings)  # CURRENT swapped: the new one is published
    new = IndexStore(settings.index).current_name()
    assert new is not None and new > old
    assert_intact(settings.index, new, ORIGINAL | batch, embedder)

    counting = Counting(embedder)
    final = ingest([corpus], settings, progress=False, embedder=counting)
    assert final.count("unchanged") == 7 and final.generation == new and counting.texts == []
    if settings.index_backend == "milvus":  # no collection of a killed run is left behind
        assert milvus_collections(settings) == {p.name for p in generations.glob("gen-*")}


def milvus_collections(settings: Settings) -> set[str]:
    """This index's generation collections in Milvus, named as their generation directories."""
    with IndexStore(settings.index).open() as snap:
        prefix = snap.manifest.milvus_prefix + "_"
    names = milvus.client(settings.milvus_uri).list_collections()
    return {n.removeprefix(prefix).replace("_", "-") for n in names if n.startswith(prefix + "gen_")}
