"""Parse and embed on a Ray cluster (`rag ingest --ray ADDRESS`): Ray Data spreads the files over
parser actors (each with its own parsing sandbox and tokenizer) and the new chunks over embedder
actors (one model each, a GPU each where the cluster has GPUs). Embedding is 90%+ of ingest
time (bench/RESULTS.md), so this is what more machines speed up.

Only the work moves: the driver keeps planning, staging and publishing exactly as a local
ingest does (rag.ingest), so the same files give the same chunks, ids and vectors, and the index
(local or Milvus) sees one writer. "local" starts a Ray instance on this machine's cores;
anything else is an address for `ray.init` ("auto", "ray://head:10001").
"""

from __future__ import annotations

import logging
import os
from dataclasses import replace
from pathlib import Path

import numpy as np

from indexes import Manifest, contextual_text
from rag.parsing_sandbox import Limits
from rag.settings import Settings
from rag.sources import Parsed, Source, parse_source

EMBED_BATCH = 256  # texts per Ray Data batch handed to one embedder actor


class _Parser:
    """A Ray actor: parses files (in a sandbox of its own) and chunks them as a local run does."""

    def __init__(self, model: str, chunk_size: int, chunk_overlap: int, table_scheme: str, extractor: str,
                 limits: Limits, headed: bool):
        from rag.chunking import Chunker
        from rag.embedding import load_tokenizer
        from rag.parsing_sandbox import ParsingSandbox

        self.chunker = Chunker(load_tokenizer(model), chunk_size, chunk_overlap, table_scheme)
        self.sandbox = ParsingSandbox(limits)
        self.extractor, self.headed = extractor, headed

    def __call__(self, batch: dict) -> dict:
        parsed = []
        for source in batch["source"]:
            if Path(source.path).is_file():  # files are read here; text sources brought their text
                source.load, source.read_title = self.sandbox.loaders(Path(source.path), self.extractor)
            done = parse_source(source, self.chunker, self.headed)
            parsed.append(replace(done, source=replace(source, load=_unpicklable, read_title=_no_title)))
        return {"i": batch["i"], "parsed": parsed}


class _Embedder:
    """A Ray actor holding one embedding model."""

    def __init__(self, model: str, backend: str, batch_size: int, precision: str, prompt: str):
        from rag.embedders import load_embedder

        self.embedder = load_embedder(model, backend, batch_size, precision)
        self.prompt = prompt

    def __call__(self, batch: dict) -> dict:
        vectors = self.embedder.encode(list(batch["text"]), prompt=self.prompt)
        return {"hash": batch["hash"], "vector": np.asarray(vectors, dtype=np.float32)}


def _unpicklable() -> list[str]:
    raise RuntimeError("a source parsed on a Ray worker is loaded there")


def _no_title() -> None:
    return None


def start(address: str) -> None:
    """Connect to the Ray cluster at `address` ("local": a new one on this machine), once."""
    import ray

    if not ray.is_initialized():
        if address == "local":
            ray.init(num_cpus=os.cpu_count(), include_dashboard=False, log_to_driver=False)
        else:
            ray.init(address=address, log_to_driver=False)
    context = ray.data.DataContext.get_current()
    context.enable_progress_bars = False  # ingest draws its own bars; Ray's would interleave with them
    context.print_on_execution_start = False
    logging.getLogger("ray.data").setLevel(logging.WARNING)


def parse_and_embed(
    todo: list[Source], manifest: Manifest, settings: Settings, known: dict[str, np.ndarray], headed: bool
) -> tuple[list[Parsed], dict[str, np.ndarray]]:
    """`todo` parsed and chunked on the cluster, in order, and the vectors of every chunk text
    not in `known`, by text hash."""
    try:
        import ray
    except ImportError as err:
        raise ValueError("--ray needs Ray Data: pip install 'ragstack[scale]'") from err
    start(settings.ray_address or "local")
    resources = ray.cluster_resources()
    workers = max(1, min(int(resources.get("CPU", 1)), settings.ray_workers or 1 << 30))
    gpus = 1 if resources.get("GPU", 0) >= 1 else 0
    items = [
        {"i": i, "source": replace(s, load=_loader_of(s), read_title=_no_title)} for i, s in enumerate(todo)
    ]
    parsed_rows = ray.data.from_items(items).map_batches(
        _Parser, batch_size=1, num_cpus=1, compute=ray.data.ActorPoolStrategy(size=min(workers, len(todo))),
        fn_constructor_args=(
            manifest.model, manifest.chunk_size, manifest.chunk_overlap, manifest.table_scheme,
            settings.extractor, Limits.from_settings(settings), headed,
        ),
    ).take_all()
    parsed = [None] * len(todo)
    for row in parsed_rows:
        parsed[row["i"]] = replace(row["parsed"], source=todo[row["i"]])  # the driver's own Source
    new = {
        c.text_hash: contextual_text(d.header, c.text)
        for d in parsed if d.error is None
        for c in d.chunks if c.text_hash not in known
    }
    fresh: dict[str, np.ndarray] = {}
    if new:
        rows = ray.data.from_items([{"hash": h, "text": t} for h, t in new.items()]).map_batches(
            _Embedder, batch_size=EMBED_BATCH, num_cpus=0 if gpus else 1, num_gpus=gpus,
            compute=ray.data.ActorPoolStrategy(size=min(workers, max(1, len(new) // EMBED_BATCH))),
            fn_constructor_args=(manifest.model, manifest.embed_backend, settings.embed_batch_size,
                                 settings.embed_precision, manifest.document_prompt or ""),
        ).take_all()
        fresh = {row["hash"]: np.asarray(row["vector"], dtype=np.float32) for row in rows}
    return parsed, fresh


def _loader_of(source: Source):
    """What a worker can call to load a source: nothing for a file (the worker parses it in its own
    sandbox), the text itself for a text source (its loader is a closure over local objects)."""
    if Path(source.path).is_file():
        return _unpicklable
    pages = source.load()
    return lambda: pages
