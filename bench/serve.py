"""Serving throughput: requests/s and p50/p99 latency for /v1/search and /v1/chat/completions
(short answers) at 1, 4 and 16 concurrent clients, embedded engine vs vLLM, side by side, and
the generator's tokens/s for each.

Each engine runs as a real `rag serve` process over the same index (ragstack's own docs
rendered to PDF). The vLLM engine needs RAG_VLLM_PYTHON (see rag/vllm_server.py).

    python bench/serve.py [--engines transformers,vllm] [--requests 32] [--max-tokens 16]
"""

from __future__ import annotations

import argparse
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import get_args

import httpx
import numpy as np
from rich.console import Console
from rich.table import Table

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from rag.answer import ANSWER_STYLE, AnswerStyle  # noqa: E402
from rag.demo import demo_sources, render_pdf  # noqa: E402

QUESTIONS = [
    "How does re-indexing stay safe when the process crashes?",
    "Which PDF parser is the default?",
    "What does hybrid retrieval combine?",
    "How are chunks counted?",
    "Where does the index live by default?",
    "Which FAISS index type is chosen for a small corpus?",
]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start(engine: str, index: Path, sessions: Path, answer_style: str) -> tuple[subprocess.Popen, str]:
    port = free_port()
    env = {**os.environ, "RAG_INDEX": str(index), "RAG_SESSIONS": str(sessions), "RAG_API_KEYS": "",
           "RAG_ANSWER_STYLE": answer_style}
    process = subprocess.Popen(
        [str(Path(sys.executable).parent / "rag"), "serve", "--port", str(port), "--engine", engine],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        start_new_session=True,
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 900
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(
                f"rag serve --engine {engine} exited:\n{process.stderr.read().decode()[-3000:]}"
            )
        try:
            if httpx.get(f"{url}/health", timeout=2).status_code == 200:
                return process, url
        except httpx.HTTPError:
            pass
        time.sleep(1)
    raise TimeoutError(f"rag serve --engine {engine} did not start")


def load(url: str, path: str, body_of, clients: int, requests: int) -> dict:
    """`requests` requests spread over `clients` threads; latency per request, throughput overall."""
    latencies: list[float] = []
    failures, quoted = [0], [0]
    lock = threading.Lock()
    counter = iter(range(requests))

    def client() -> None:
        with httpx.Client(base_url=url, timeout=600) as http:
            while True:
                with lock:
                    i = next(counter, None)
                if i is None:
                    return
                start = time.perf_counter()
                response = http.post(path, json=body_of(i))
                elapsed = time.perf_counter() - start
                with lock:
                    latencies.append(elapsed)
                    failures[0] += response.status_code != 200
                    quoted[0] += response.status_code == 200 and was_quoted(response.json())

    threads = [threading.Thread(target=client) for _ in range(clients)]
    start = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    wall = time.perf_counter() - start
    ms = np.array(latencies) * 1000
    return {
        "rps": len(latencies) / wall,
        "p50": float(np.percentile(ms, 50)),
        "p99": float(np.percentile(ms, 99)),
        "failed": failures[0],
        "quoted": quoted[0],
    }


def was_quoted(reply: dict) -> bool:
    """A chat reply whose every citation is the sources' own words: quoted without generating,
    or a generated reply the claim check replaced by a source sentence."""
    citations = reply.get("citations") or []
    return bool(citations) and all(c.get("extracted") for c in citations)


def tokens_per_second(url: str, max_tokens: int = 64, runs: int = 3) -> float:
    """Streamed content chunks per second of one answer, from the first chunk to the last."""
    import openai

    chat = openai.OpenAI(base_url=f"{url}/v1", api_key="none", timeout=600)
    rates = []
    for question in QUESTIONS[:runs]:
        stamps = []
        for chunk in chat.chat.completions.create(
            model="x", stream=True, max_tokens=max_tokens, messages=[{"role": "user", "content": question}]
        ):
            if chunk.choices and chunk.choices[0].delta.content:
                stamps.append(time.perf_counter())
        if len(stamps) > 2:  # a quoted answer comes as one piece: no tokens to time
            rates.append((len(stamps) - 1) / (stamps[-1] - stamps[0]))
    return statistics.median(rates) if rates else float("nan")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--engines", default="transformers,vllm")
    parser.add_argument("--requests", type=int, default=32, help="chat requests per concurrency level")
    parser.add_argument("--max-tokens", type=int, default=16)
    parser.add_argument("--answer-style", default=ANSWER_STYLE, choices=get_args(AnswerStyle),
                        help="RAG_ANSWER_STYLE of the servers; generated: the generator on every request")
    args = parser.parse_args()
    console = Console(width=160)  # tables stay readable when the output goes to a file
    from rag.ingest import ingest
    from rag.settings import Settings

    work = Path(tempfile.mkdtemp(prefix="bench-serve-"))
    pdfs = work / "pdfs"
    pdfs.mkdir()
    for name, text in demo_sources().items():
        render_pdf(text, pdfs / f"{name}.pdf")
    ingest([pdfs], Settings(index=work / "index"), progress=False)

    results: dict[str, dict] = {}
    for engine in args.engines.split(","):
        console.print(f"starting rag serve --engine {engine} ...")
        process, url = start(engine, work / "index", work / f"sessions-{engine}.sqlite", args.answer_style)
        try:

            def chat_body(i: int) -> dict:
                question = QUESTIONS[i % len(QUESTIONS)]
                return {
                    "model": "x",
                    "max_tokens": args.max_tokens,
                    "messages": [{"role": "user", "content": question}],
                }

            def search_body(i: int) -> dict:
                return {"query": QUESTIONS[i % len(QUESTIONS)], "k": 5}

            load(url, "/v1/chat/completions", chat_body, 1, 2)  # warm-up: loads the models
            for clients in (1, 4, 16):
                results[f"search|{clients}|{engine}"] = load(url, "/v1/search", search_body, clients, 200)
                results[f"chat|{clients}|{engine}"] = load(
                    url, "/v1/chat/completions", chat_body, clients, max(args.requests, clients)
                )
            results[f"tokens|{engine}"] = {"tps": tokens_per_second(url)}
        finally:
            process.terminate()
            process.wait(60)

    engines = args.engines.split(",")
    table = Table(
        "endpoint",
        "clients",
        *[f"{e} {m}" for e in engines for m in ("req/s", "p50 ms", "p99 ms")],
        title=f"rag serve, ragstack docs index, chat answers <= {args.max_tokens} tokens, "
        f"answer style {args.answer_style}",
    )
    for endpoint in ("search", "chat"):
        for clients in (1, 4, 16):
            cells = []
            for engine in engines:
                r = results.get(f"{endpoint}|{clients}|{engine}")
                cells += [f"{r['rps']:.2f}", f"{r['p50']:.0f}", f"{r['p99']:.0f}"] if r else ["-"] * 3
                if r and r["failed"]:
                    cells[-1] += f" ({r['failed']} failed)"
                if r and endpoint == "chat" and r["quoted"]:
                    cells[-3] += f" ({r['quoted']} in sources' words)"
            table.add_row(
                f"/v1/{'search' if endpoint == 'search' else 'chat/completions'}", str(clients), *cells
            )
    console.print(table)
    for engine in engines:
        console.print(f"{engine}: {results[f'tokens|{engine}']['tps']:.1f} tokens/s for one streamed answer")


if __name__ == "__main__":
    main()
