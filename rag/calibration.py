"""Which embedding precision is fastest here, measured once per CPU model and model.

CPU flags do not say it: on an AMD EPYC without native bfloat16, fp32 wins; on an Intel Xeon with
avx512_bf16 but no AMX, bf16 autocast was still 1.5x slower than fp32 (bench/RESULTS.md). So
`RAG_EMBED_PRECISION=auto` encodes a few batches of chunk-sized texts in each precision the first
time a model is used on a machine, keeps the faster, and remembers the figures
(`~/.cache/ragstack/calibration/embedding.json`), which `rag status` shows.
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


def _key(model: str) -> str:
    import torch

    return f"{cpu_model()} | {os.cpu_count()} cores | torch {torch.__version__} | {model}"


def recorded(model: str) -> dict | None:
    """What calibrating `model` on this machine found: choice, texts/s per precision, date."""
    try:
        return json.loads(calibration_file().read_text()).get(_key(model))
    except (OSError, ValueError):
        return None


def calibrated_precision(embedder) -> str:
    """The faster of CANDIDATES for a loaded rag.embedding.Embedder, measured now or before."""
    found = recorded(embedder.name)
    if found is not None and found.get("choice") in CANDIDATES:
        return found["choice"]
    speeds = {precision: _texts_per_second(embedder, precision) for precision in CANDIDATES}
    choice = max(speeds, key=speeds.get)
    _remember(embedder.name, {"choice": choice, "texts_per_s": speeds, "measured": str(date.today())})
    return choice


def _texts_per_second(embedder, precision: str) -> float:
    """Batches of BATCH chunk-sized texts until BUDGET_S has passed (one batch at least)."""
    length = max(16, int(embedder.max_tokens * 0.6))  # words: about a chunk's 200 tokens
    texts = [" ".join(_WORDS[(i + j) % len(_WORDS)] for j in range(length)) for i in range(BATCH)]
    embedder.encode_in(precision, texts[:2])  # warm-up: first-call costs
    done, start = 0, time.perf_counter()
    while done == 0 or (time.perf_counter() - start < BUDGET_S and done < MAX_TEXTS):
        embedder.encode_in(precision, texts)
        done += len(texts)
    return round(done / (time.perf_counter() - start), 1)


def _remember(model: str, result: dict) -> None:
    path = calibration_file()
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        everything = json.loads(path.read_text())
    except (OSError, ValueError):
        everything = {}
    everything[_key(model)] = result
    partial = path.with_name(f".{path.name}.{os.getpid()}")
    partial.write_text(json.dumps(everything, indent=2) + "\n")
    os.replace(partial, path)
