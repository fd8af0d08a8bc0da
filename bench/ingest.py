"""Ingest throughput, end to end, against LlamaIndex's pipeline on the same PDFs.

Each pipeline runs in its own process so that peak memory (max RSS) is its own:
  ragstack            pypdfium2 -> token chunks (MiniLM tokenizer) -> MiniLM -> generation on disk
                      (the defaults: backend and precision chosen by measurement, rag.calibration)
  ragstack-fp32       the same with torch in float32 throughout
  ragstack-bf16       the same with torch's matrix products in bfloat16 (extra: slow without native bf16)
  ragstack-onnx       the same with the int8 ONNX Runtime embedder
  ragstack-ray        the default, parsed and embedded by Ray Data actors on a local Ray instance
                      started in the run (`rag ingest --ray local`; extra; its time includes Ray's start)
  llamaindex-equal    SimpleDirectoryReader (pypdf) -> SentenceSplitter(same size/overlap, MiniLM
                      tokenizer) -> HuggingFaceEmbedding(same MiniLM dir) -> FaissVectorStore
  llamaindex-default  the same with LlamaIndex's defaults (1024-token nodes, 20 overlap,
                      tiktoken counting; MiniLM silently truncates each node to 256 tokens)

    python bench/ingest.py [--pdfs DIR] [--limit 10] [--all-ragstack] [--pipelines a,b]
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
DEFAULT_PDFS = ROOT.parent / "shared" / "data" / "financebench" / "pdfs"
CHUNK, OVERLAP = 200, 32
PIPELINES = ("ragstack", "ragstack-fp32", "ragstack-onnx", "llamaindex-equal", "llamaindex-default")
# the default with a document header in every chunk; torch in bf16
EXTRA_PIPELINES = ("ragstack-headers", "ragstack-bf16", "ragstack-ray")
EXPLICIT = {  # pipeline -> (backend, precision) forced; "ragstack" leaves both to measurement
    "ragstack-fp32": ("torch", "fp32"),
    "ragstack-bf16": ("torch", "bf16"),
    "ragstack-onnx": ("onnx-int8", "auto"),
}


def run_ragstack(
    pdfs: Path, backend: str = "auto", precision: str = "auto", header: str = "none", ray: bool = False
) -> dict:
    from indexes import IndexStore
    from rag.embedding import resolve_precision
    from rag.ingest import ingest
    from rag.settings import Settings

    with tempfile.TemporaryDirectory() as tmp:
        start = time.perf_counter()
        settings = Settings(index=Path(tmp) / "index", chunk_size=CHUNK, chunk_overlap=OVERLAP,
                            embed_backend=backend, embed_precision=precision, doc_header=header,
                            ray_address="local" if ray else None)
        report = ingest([pdfs], settings, progress=False)
        total = time.perf_counter() - start
        with IndexStore(settings.index).open() as snapshot:
            kind = snapshot.manifest.embed_backend
        if kind == "torch":
            kind += " " + resolve_precision(precision, model=settings.model)
    chunks = report.chunks_embedded + report.chunks_reused
    return {"seconds": total, "pages": report.pages, "chunks": chunks, "embedder": kind,
            "phases": report.seconds, "failed": [f.name for f in report.failed]}


def run_llamaindex(pdfs: Path, defaults: bool) -> dict:
    import faiss
    from llama_index.core import SimpleDirectoryReader, StorageContext, VectorStoreIndex
    from llama_index.core.node_parser import SentenceSplitter
    from llama_index.embeddings.huggingface import HuggingFaceEmbedding
    from llama_index.vector_stores.faiss import FaissVectorStore

    from rag.embedding import resolve_model

    model_dir = resolve_model("all-MiniLM-L6-v2")
    phases = {}
    start = time.perf_counter()
    t = time.perf_counter()
    documents = SimpleDirectoryReader(str(pdfs), required_exts=[".pdf"]).load_data(show_progress=False)
    phases["parse"] = time.perf_counter() - t
    t = time.perf_counter()
    if defaults:
        splitter = SentenceSplitter()
    else:
        from transformers import AutoTokenizer

        tokenizer = AutoTokenizer.from_pretrained(model_dir)
        splitter = SentenceSplitter(
            chunk_size=CHUNK, chunk_overlap=OVERLAP,
            tokenizer=lambda text: tokenizer.encode(text, add_special_tokens=False),
        )
    nodes = splitter.get_nodes_from_documents(documents)
    phases["chunk"] = time.perf_counter() - t
    t = time.perf_counter()
    embed_model = HuggingFaceEmbedding(model_name=model_dir, device="cpu")
    phases["load model"] = time.perf_counter() - t
    t = time.perf_counter()
    store = FaissVectorStore(faiss_index=faiss.IndexFlatL2(384))
    VectorStoreIndex(nodes, storage_context=StorageContext.from_defaults(vector_store=store),
                     embed_model=embed_model)
    phases["embed + write"] = time.perf_counter() - t
    return {"seconds": time.perf_counter() - start, "pages": len(documents), "chunks": len(nodes),
            "embedder": "HuggingFaceEmbedding (torch)", "phases": phases, "failed": []}


def child(pipeline: str, pdfs: Path) -> None:
    if pipeline.startswith("ragstack"):
        backend, precision = EXPLICIT.get(pipeline, ("auto", "auto"))
        header = "title-entities-v1" if pipeline == "ragstack-headers" else "none"
        result = run_ragstack(pdfs, backend, precision, header, ray=pipeline == "ragstack-ray")
    else:
        result = run_llamaindex(pdfs, defaults=pipeline == "llamaindex-default")
    result["peak_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print("RESULT " + json.dumps(result))


def measure(pipeline: str, pdfs: Path) -> dict:
    done = subprocess.run([sys.executable, __file__, "--child", pipeline, "--pdfs", str(pdfs)],
                          capture_output=True, text=True)
    lines = [line for line in done.stdout.splitlines() if line.startswith("RESULT ")]
    if done.returncode != 0 or not lines:
        raise RuntimeError(f"{pipeline} failed:\n{done.stderr[-3000:]}")
    return json.loads(lines[-1][7:])


def subset(pdfs: Path, limit: int) -> Path:
    folder = Path(tempfile.mkdtemp(prefix="bench-pdfs-"))
    for path in sorted(pdfs.glob("*.pdf"))[:limit]:
        (folder / path.name).symlink_to(path.resolve())
    return folder


def main() -> None:
    from rich.console import Console
    from rich.table import Table

    parser = argparse.ArgumentParser()
    parser.add_argument("--pdfs", type=Path, default=DEFAULT_PDFS)
    parser.add_argument("--limit", type=int, default=10, help="PDFs in the side-by-side run")
    parser.add_argument("--all-ragstack", action="store_true", help="also ragstack on every PDF")
    parser.add_argument("--pipelines", default=",".join(PIPELINES),
                        help=f"comma-separated, from {', '.join(PIPELINES + EXTRA_PIPELINES)}")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        return child(args.child, args.pdfs)

    console = Console(width=160)  # tables stay readable when the output goes to a file
    few = subset(args.pdfs, args.limit)
    runs = {}
    if args.all_ragstack:
        runs[f"ragstack, all {len(list(args.pdfs.glob('*.pdf')))} PDFs"] = measure("ragstack", args.pdfs)
    for pipeline in args.pipelines.split(","):
        console.print(f"running {pipeline} on {args.limit} PDFs ...")
        runs[f"{pipeline}, {args.limit} PDFs"] = measure(pipeline, few)
    from rag.calibration import cpu_model

    table = Table("pipeline", "embedder", "pages", "chunks", "seconds", "pages/s", "chunks/s", "peak MB",
                  "phases (s)", title=f"ingest on {cpu_model()}, {os.cpu_count()} cores, chunk {CHUNK} / "
                  f"overlap {OVERLAP} tokens (defaults: 1024 / 20)")
    for name, r in runs.items():
        phases = ", ".join(f"{k} {v:.1f}" for k, v in r["phases"].items())
        table.add_row(name, r["embedder"], str(r["pages"]), str(r["chunks"]), f"{r['seconds']:.1f}",
                      f"{r['pages'] / r['seconds']:.2f}", f"{r['chunks'] / r['seconds']:.1f}",
                      f"{r['peak_mb']:.0f}", phases)
    console.print(table)
    rate = {name: r["pages"] / r["seconds"] for name, r in runs.items()}
    for ours in ("ragstack", *EXPLICIT):
        for other in ("llamaindex-equal", "llamaindex-default"):
            a, b = f"{ours}, {args.limit} PDFs", f"{other}, {args.limit} PDFs"
            if a in rate and b in rate:
                console.print(f"{ours} vs {other}: {rate[a] / rate[b]:.2f}x pages/s")
    explicit = {p: rate[f"{p}, {args.limit} PDFs"] for p in EXPLICIT if f"{p}, {args.limit} PDFs" in rate}
    if explicit and f"ragstack, {args.limit} PDFs" in rate:
        best = max(explicit, key=explicit.get)
        ratio = rate[f"ragstack, {args.limit} PDFs"] / explicit[best]
        console.print(f"ragstack default vs the best explicit choice ({best}): {ratio:.2f}x pages/s")
    print(json.dumps(runs))


if __name__ == "__main__":
    main()
