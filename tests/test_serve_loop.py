"""The event loop stays free while requests work: on a real uvicorn server on 127.0.0.1, /health
answers within 0.5 s while a chat follow-up's rewrite and a large embeddings request are in flight.

The generator is a deliberately slow fake (the test is about the event loop, not about answers);
the embedder is the real MiniLM, since encoding, tokenising and rendering its vectors are what
such a request costs.
"""

from __future__ import annotations

import threading
import time
from pathlib import Path

import httpx
from conftest import make_reports
from live_server import Server
from pdfs import lorem

from rag.conversation import REWRITE_PROMPT, SessionStore
from rag.ingest import ingest
from rag.settings import Settings
from serve.app import create_app

HEALTH_WITHIN = 0.5  # seconds
N_INPUTS = 2000


class SlowGenerator:
    """A tiny fake generator that takes `seconds` per reply, blocking its thread as a model on a
    CPU does; on the event loop, that sleep would hold up every other request."""

    name = "slow-fake"

    def __init__(self, seconds: float):
        self.seconds = seconds
        self.calls: list[list[dict]] = []
        self.started = threading.Event()

    def stream(self, messages: list[dict], max_tokens: int = 256, temperature: float = 0.0):
        self.calls.append(messages)
        self.started.set()
        time.sleep(self.seconds)
        rewriting = messages[0]["content"] == REWRITE_PROMPT
        yield "What was Acme's revenue in 2022?" if rewriting else "It was 5.1 billion dollars [1]."


def test_health_answers_while_a_rewrite_and_a_large_embedding_run(tmp_path: Path, embedder) -> None:
    settings = Settings(index=tmp_path / "index", sessions=tmp_path / "sessions.sqlite")
    ingest([make_reports(tmp_path / "pdfs")], settings, progress=False, embedder=embedder)
    sessions = SessionStore(settings.sessions)  # a session with history: the next turn is rewritten
    sessions.create("s1", owner="anonymous")  # as the server makes one for a service without keys
    sessions.append("s1", "user", "What was Acme's revenue in 2021?")
    sessions.append("s1", "assistant", "Acme's revenue in 2021 was 4.2 billion dollars [1].")
    sessions.close()
    generator = SlowGenerator(seconds=3)
    server = Server(create_app(settings, generator, embedder))
    replies: dict[str, httpx.Response] = {}
    finished: dict[str, float] = {}

    def post(name: str, path: str, body: dict) -> None:
        replies[name] = httpx.post(f"{server.url}{path}", json=body, timeout=600)
        finished[name] = time.monotonic()

    texts = [f"{i}: " + lorem(f"topic{i % 50}", 1) for i in range(N_INPUTS)]  # ~20 tokens each
    follow_up = {"messages": [{"role": "user", "content": "And in 2022?"}], "session_id": "s1"}
    workers = [
        threading.Thread(target=post, args=("embeddings", "/v1/embeddings", {"input": texts})),
        threading.Thread(target=post, args=("chat", "/v1/chat/completions", follow_up)),
    ]
    try:
        for worker in workers:
            worker.start()
        assert generator.started.wait(120), "the chat's rewrite did not start"
        polls: list[tuple[float, float]] = []  # (when, seconds taken)
        with httpx.Client(base_url=server.url, timeout=30) as http:
            while any(w.is_alive() for w in workers):
                start = time.monotonic()
                assert http.get("/health").status_code == 200
                polls.append((start, time.monotonic() - start))
                time.sleep(0.05)
        for worker in workers:
            worker.join()
    finally:
        server.stop()
    assert replies["chat"].status_code == 200, replies["chat"].text
    assert replies["embeddings"].status_code == 200, replies["embeddings"].text[:500]
    assert generator.calls[0][0]["content"] == REWRITE_PROMPT  # the rewrite did run
    assert len(replies["embeddings"].json()["data"]) == N_INPUTS
    both_running = [seconds for when, seconds in polls if when < min(finished.values())]
    assert len(both_running) >= 5, polls  # /health was asked while both were in flight
    slowest = max(seconds for _, seconds in polls)
    assert slowest < HEALTH_WITHIN, f"/health took {slowest:.2f} s while requests worked"
