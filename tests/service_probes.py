"""Probes of a running `rag serve`: what tests/test_serve_security.py asserts and
bench/reliability.py tabulates. Each takes the server's URL and keys, and returns counts.

The generator behind these probes is `QuickGenerator`, a tiny fake that answers at once: the
probes are about the service's plumbing (keys, limits, collections, concurrency), not answers.
"""

from __future__ import annotations

import socket
import statistics
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlparse

import httpx

ADMIN, FINANCE_READER, FINANCE_WRITER, OTHER_WRITER = (
    "sk-admin-0123456789",
    "sk-finance-read-0123",
    "sk-finance-write-012",
    "sk-other-write-01234",
)
KEYS_TOML = f"""
[[keys]]
key = "{ADMIN}"
name = "admin"
collections = ["*"]
write = true

[[keys]]
key = "{FINANCE_READER}"
name = "finance-reader"
collections = ["finance"]

[[keys]]
key = "{FINANCE_WRITER}"
name = "finance-writer"
collections = ["finance"]
write = true

[[keys]]
key = "{OTHER_WRITER}"
name = "other-writer"
collections = ["other"]
write = true
"""


QUESTION = {"role": "user", "content": "What was Acme's revenue?"}
FINANCE_SECRET, OTHER_SECRET = "Zanzibar", "Quokka"  # words only one collection's documents hold


def start_secured(root: Path, generator, embedder):
    """A real server with the keys of KEYS_TOML and three collections: the default one (two
    Acme reports), `finance` (a ledger) and `other` (a survey). Returns (server, settings)."""
    from conftest import make_reports
    from live_server import Server
    from pdfs import make_pdf

    from rag.settings import Settings
    from serve.app import create_app

    (root / "keys.toml").write_text(KEYS_TOML)
    settings = Settings(index=root / "index", sessions=root / "sessions.sqlite", keys_file=root / "keys.toml")
    server = Server(create_app(settings, generator, embedder))
    pdfs = make_reports(root / "pdfs")
    finance = make_pdf(root / "ledger.pdf", [f"The {FINANCE_SECRET} ledger shows revenue of 9.9 million."])
    other = make_pdf(root / "wildlife.pdf", [f"The {OTHER_SECRET} survey counted 412 animals."])
    with httpx.Client(base_url=server.url, headers=bearer(ADMIN), timeout=300) as http:
        for path, files in [
            ("/v1/documents", [pdfs / "acme_2021.pdf", pdfs / "acme_2022.pdf"]),
            ("/v1/collections/finance/documents", [finance]),
            ("/v1/collections/other/documents", [other]),
        ]:
            body = [("files", (p.name, p.read_bytes(), "application/pdf")) for p in files]
            response = http.post(path, files=body, params={"wait": True})
            assert response.status_code == 202 and response.json()["job"]["status"] == "done", response.text
    return server, settings


class QuickGenerator:
    """A tiny fake generator for plumbing tests: it answers at once, citing source 1."""

    name = "quick-fake"

    def stream(
        self, messages: list[dict], max_tokens: int = 256, temperature: float = 0.0, **_
    ) -> Iterator[str]:
        yield "The sources say so [1]."


def bearer(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


def rss_mb() -> float:
    """This process's resident memory (the tests run the server in a thread of it)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError("no VmRSS in /proc/self/status")


def raw_post(url: str, path: str, headers: dict[str, str], declared: int, send: int) -> int:
    """POST declaring a `declared`-byte body but sending at most `send` bytes of it, then read
    the status: a server that waits for the whole body before answering would hang here."""
    parts = urlparse(url)
    head = [f"POST {path} HTTP/1.1", f"Host: {parts.netloc}", "Content-Type: application/json",
            f"Content-Length: {declared}", "Connection: close"]
    head += [f"{k}: {v}" for k, v in headers.items()]
    with socket.create_connection((parts.hostname, parts.port), timeout=30) as sock:
        sock.sendall(("\r\n".join(head) + "\r\n\r\n").encode())
        try:
            piece = b"x" * 65536
            for _ in range(send // len(piece)):
                sock.sendall(piece)
        except OSError:
            pass  # the server answered and closed: what we want
        reply = sock.recv(65536).decode(errors="replace")
    return int(reply.split(" ", 2)[1])


def endpoint_attempts(collection: str, ids: dict[str, str]) -> list[tuple[str, str, dict]]:
    """Every collection-scoped request, aimed at `collection` (method, path, request kwargs)."""
    base = f"/v1/collections/{collection}"
    doc, session, job = ids.get("doc", "x.pdf"), ids.get("session", "s"), ids.get("job", "j")
    pdf = ("files", ("probe.pdf", b"%PDF-1.4\n%%EOF\n", "application/pdf"))
    return [
        ("POST", f"{base}/search", {"json": {"query": "revenue"}}),
        ("GET", f"{base}/documents", {}),
        ("POST", f"{base}/documents", {"files": [pdf]}),
        ("DELETE", f"{base}/documents/{doc}", {}),
        ("POST", f"{base}/reindex", {}),
        ("GET", f"{base}/jobs/{job}", {}),
        ("POST", f"{base}/sessions", {}),
        ("GET", f"{base}/sessions/{session}", {}),
        ("DELETE", f"{base}/sessions/{session}", {}),
        ("POST", "/v1/chat/completions",
         {"json": {"model": collection, "messages": [{"role": "user", "content": "What was the revenue?"}]}}),
    ]


def cross_collection(url: str, key: str, collection: str, ids: dict[str, str],
                     secret: str) -> tuple[int, list[str]]:
    """Every endpoint of `collection` tried with a `key` that does not hold it: (attempts, leaks).
    A leak is any answer but 403/404, or any answer that shows `secret` (a word only that
    collection's documents hold)."""
    leaks = []
    with httpx.Client(base_url=url, headers=bearer(key), timeout=60) as http:
        attempts = endpoint_attempts(collection, ids)
        for method, path, kwargs in attempts:
            response = http.request(method, path, **kwargs)
            if response.status_code not in (403, 404) or secret in response.text:
                leaks.append(f"{method} {path}: {response.status_code} {response.text[:200]}")
    return len(attempts), leaks


def soak(url: str, key: str, clients: int, seconds: float) -> dict:
    """`clients` threads mixing search, chat and listing for `seconds`: requests, errors, p99."""
    latencies: list[float] = []
    errors: list[str] = []
    stop = time.monotonic() + seconds
    calls = [
        ("POST", "/v1/search", {"json": {"query": "Acme revenue", "k": 3}}),
        ("POST", "/v1/chat/completions", {"json": {"model": "ragstack", "messages": [QUESTION]}}),
        ("GET", "/v1/documents", {}),
    ]

    def client(n: int) -> None:
        with httpx.Client(base_url=url, headers=bearer(key), timeout=60) as http:
            i = n
            while time.monotonic() < stop:
                method, path, kwargs = calls[i % len(calls)]
                start = time.perf_counter()
                try:
                    response = http.request(method, path, **kwargs)
                    if response.status_code != 200:
                        errors.append(f"{path}: {response.status_code} {response.text[:200]}")
                except httpx.HTTPError as err:
                    errors.append(f"{path}: {err!r}")
                latencies.append(time.perf_counter() - start)
                i += 1

    threads = [threading.Thread(target=client, args=(n,)) for n in range(clients)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    latencies.sort()
    p99 = latencies[min(len(latencies) - 1, int(0.99 * len(latencies)))] if latencies else float("nan")
    return {"requests": len(latencies), "errors": errors, "p99_s": p99,
            "median_s": statistics.median(latencies) if latencies else float("nan")}


def queries_during_job(url: str, key: str, clients: int, start_job, job_path: str) -> dict:
    """`clients` threads search while the job `start_job()` starts runs: queries answered while
    it ran, failures, and the finished job."""
    stop = threading.Event()
    answered_at: list[float] = []
    failures: list[str] = []

    def query() -> None:
        with httpx.Client(base_url=url, headers=bearer(key), timeout=60) as http:
            while not stop.is_set():
                response = http.post("/v1/search", json={"query": "Acme revenue", "k": 3})
                if response.status_code != 200 or not response.json()["results"]:
                    failures.append(response.text[:200])
                else:
                    answered_at.append(time.time())

    threads = [threading.Thread(target=query) for _ in range(clients)]
    for t in threads:
        t.start()
    try:
        time.sleep(0.5)
        job = start_job()
        with httpx.Client(base_url=url, headers=bearer(key), timeout=60) as http:
            deadline = time.monotonic() + 300
            while job["status"] in ("queued", "running") and time.monotonic() < deadline:
                time.sleep(0.2)
                job = http.get(job_path.format(id=job["id"])).json()
        time.sleep(0.5)
    finally:
        stop.set()
        for t in threads:
            t.join()
    during = [t for t in answered_at if job.get("started") and job["started"] <= t <= (job["finished"] or 0)]
    return {"queries": len(answered_at), "during": len(during), "failures": failures, "job": job}


def fuzz(openapi: dict, url: str, key: str, examples: int) -> tuple[int, list[str]]:
    """schemathesis over the app's own OpenAPI document, `examples` cases per operation, each
    sent with the key and without it: (requests sent, 5xx answers)."""
    import hypothesis
    import schemathesis
    from hypothesis import HealthCheck, Phase

    schema = schemathesis.openapi.from_dict(openapi)
    sent, server_errors = 0, []
    for result in schema.get_all_operations():
        operation = result.ok()

        @hypothesis.settings(
            max_examples=examples, deadline=None, database=None, phases=[Phase.generate],
            suppress_health_check=list(HealthCheck),
        )
        @hypothesis.given(case=operation.as_strategy())
        def probe(case) -> None:
            nonlocal sent
            for headers in (bearer(key), {}):
                response = case.call(base_url=url, headers=headers, timeout=120)
                sent += 1
                if response.status_code >= 500:
                    server_errors.append(f"{case.method} {case.formatted_path}: {response.status_code}")

        probe()
    return sent, server_errors
