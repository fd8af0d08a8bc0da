"""Which embedding precision is fastest here, measured once per CPU model and model.

CPU flags do not say it: on an AMD EPYC without native bfloat16, fp32 wins; on an Intel Xeon with
avx512_bf16 but no AMX, bf16 autocast was still 1.5x slower than fp32 (bench/RESULTS.md). So
`RAG_EMBED_PRECISION=auto` encodes a few batches of chunk-sized texts in each precision the first
time a model is used on a machine, keeps the faster, and remembers the figures
(`~/.cache/ragstack/calibration/embedding.json`), which `rag status` shows.

The backend is chosen the same way for a new index (`RAG_EMBED_BACKEND=auto`): torch in its
faster precision against the int8 ONNX graph, on the same texts; int8 is a candidate only if its
vectors agree with torch fp32's (mean cosine >= AGREEMENT).

Queries are measured apart (`RAG_QUERY_BACKEND=auto`): one short text at a time, where torch's
per-call overhead dominates and the int8 ONNX graph was 4-6x faster (bench/RESULTS.md). A query
embedder other than the one that made the index's vectors is a candidate only if its vectors
agree with that one's (mean cosine >= AGREEMENT on sample queries, measured in the same run).
"""

from __future__ import annotations

import json
import os
import time
from datetime import date
from pathlib import Path

from rag.paths import cache_dir

CANDIDATES = ("fp32", "bf16")
BATCH = 8
BUDGET_S = 0.6  # per candidate: a second or two for the whole calibration
MAX_TEXTS = 64
AGREEMENT = 0.99  # int8 queries over fp32 vectors: 0.9935 mean, SciFact nDCG@10 hybrid -0.0003
_QUERIES = [
    "what was the capital expenditure in fiscal 2018",
    "how do glaciers carve valleys",
    "which segment drove revenue growth",
    "when did the board approve the dividend",
    "effect of energy prices on operating costs",
    "who leads the company",
    "how many employees at year end",
    "what does the function return when the list is empty",
]
_WORDS = (
    "the quarterly revenue grew while operating costs fell and the board approved a dividend "
    "glaciers carve valleys as rivers of ice move downhill under their own weight each winter "
).split()


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    import platform

    return platform.processor() or platform.machine()


def calibration_file() -> Path:
    return cache_dir("calibration") / "embedding.json"


def _key(model: str, what: str = "documents") -> str:
    import torch

    key = f"{cpu_model()} | {os.cpu_count()} cores | torch {torch.__version__} | {model}"
    return key if what == "documents" else f"{key} | {what}"


def recorded(model: str, what: str = "documents") -> dict | None:
    """What calibrating `model` on this machine found: choice, speeds, date. `what`: "documents"
    (the precision of chunk embedding) or "queries" (the query embedder over torch vectors)."""
    try:
        return json.loads(calibration_file().read_text()).get(_key(model, what))
    except (OSError, ValueError):
        return None


def fastest_query_embedder(model: str, candidates: dict, index_backend: str) -> str:
    """Of loaded query embedders (backend -> Embedder), the fastest one query at a time among
    those whose vectors agree with the index's kind (the index's own always does); the figures
    are remembered for `model` on this machine (rag.embedders.query_backend reads them)."""
    reference = candidates[index_backend].encode(_QUERIES)
    agreement = {b: float((e.encode(_QUERIES) * reference).sum(1).mean()) for b, e in candidates.items()}
    speeds = {b: _ms_per_query(e) for b, e in candidates.items()}
    eligible = [b for b in candidates if b == index_backend or agreement[b] >= AGREEMENT]
    choice = min(eligible, key=speeds.get)
    remember_queries(model, {
        "choice": choice, "ms_per_query": speeds,
        "agreement": {b: round(a, 5) for b, a in agreement.items()}, "measured": str(date.today()),
    })
    return choice


def remember_queries(model: str, result: dict) -> None:
    _remember(_key(model, "queries"), result)


def fastest_document_backend(model: str, torch_embedder, int8_embedder) -> str:
    """"torch" or "onnx-int8", whichever embeds chunk-sized texts faster here, int8 only where
    its vectors agree with torch fp32's; the figures are remembered for `model` on this machine."""
    texts = _chunk_texts(torch_embedder)
    reference = torch_embedder.encode_in("fp32", texts)
    agreement = float((int8_embedder.encode(texts) * reference).sum(1).mean())
    precision = torch_embedder.precision
    speeds = {
        f"torch {precision}": _texts_per_second(lambda t: torch_embedder.encode_in(precision, t), texts),
        "onnx-int8": _texts_per_second(int8_embedder.encode, texts),
    }
    faster = max(speeds, key=speeds.get)
    choice = "onnx-int8" if faster == "onnx-int8" and agreement >= AGREEMENT else "torch"
    remember_backend(model, {
        "choice": choice, "texts_per_s": speeds, "agreement": round(agreement, 5),
        "measured": str(date.today()),
    })
    return choice


def remember_backend(model: str, result: dict) -> None:
    _remember(_key(model, "backend"), result)


def _ms_per_query(embedder) -> float:
    """One query at a time, as a search embeds it, until BUDGET_S has passed."""
    embedder.encode(_QUERIES[:2])  # warm-up
    done, start = 0, time.perf_counter()
    while done < len(_QUERIES) or (time.perf_counter() - start < BUDGET_S and done < MAX_TEXTS):
        embedder.encode([_QUERIES[done % len(_QUERIES)]])
        done += 1
    return round(1000 * (time.perf_counter() - start) / done, 2)


def calibrated_precision(embedder) -> str:
    """The faster of CANDIDATES for a loaded rag.embedding.Embedder, measured now or before."""
    found = recorded(embedder.name)
    if found is not None and found.get("choice") in CANDIDATES:
        return found["choice"]
    texts = _chunk_texts(embedder)
    speeds = {p: _texts_per_second(lambda t, p=p: embedder.encode_in(p, t), texts) for p in CANDIDATES}
    choice = max(speeds, key=speeds.get)
    _remember(_key(embedder.name), {"choice": choice, "texts_per_s": speeds, "measured": str(date.today())})
    return choice


def _chunk_texts(embedder) -> list[str]:
    """BATCH texts about a chunk's length (200 tokens) for `embedder`'s model."""
    length = max(16, int(embedder.max_tokens * 0.6))  # words
    return [" ".join(_WORDS[(i + j) % len(_WORDS)] for j in range(length)) for i in range(BATCH)]


def _texts_per_second(encode, texts: list[str]) -> float:
    """Batches of `texts` through `encode` until BUDGET_S has passed (one batch at least)."""
    encode(texts[:2])  # warm-up: first-call costs
    done, start = 0, time.perf_counter()
    while done == 0 or (time.perf_counter() - start < BUDGET_S and done < MAX_TEXTS):
        encode(texts)
        done += len(texts)
    return round(done / (time.perf_counter() - start), 1)


def _remember(key: str, result: dict) -> None:
    path = calibration_file()
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        everything = json.loads(path.read_text())
    except (OSError, ValueError):
        everything = {}
    everything[key] = result
    partial = path.with_name(f".{path.name}.{os.getpid()}")
    partial.write_text(json.dumps(everything, indent=2) + "\n")
    os.replace(partial, path)
