"""Warm answers: `rag ask` and `rag chat` use a running `rag serve` of the same index, whose
models are loaded, instead of loading the embedder and the generator again (seconds and a GB
per command).

`rag serve` leaves a small file beside its index (`.INDEX.serve.json`: its URL and process id)
while it runs; a command finds it, checks that the process lives and answers /health, and then
asks through the OpenAI-compatible chat endpoint. Anything else (no file, a dead process, a
refused key, a server from another index) and the command answers by itself, as before.
"""

from __future__ import annotations

import contextlib
import json
import os
from collections.abc import Iterator
from pathlib import Path

from rag.answer import Answer, sources_list

HEALTH_TIMEOUT_S = 0.5  # a server that takes longer to say it is up would not answer warm either


def beacon_path(index: Path) -> Path:
    index = Path(index).expanduser().resolve()
    return index.parent / f".{index.name}.serve.json"


def announce(index: Path, url: str) -> Path:
    """Say that this process serves `index` at `url` (written whole: a reader never sees half)."""
    path = beacon_path(index)
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(path.name + f".{os.getpid()}")
    partial.write_text(json.dumps({"url": url, "pid": os.getpid(), "index": str(Path(index).resolve())}))
    os.replace(partial, path)
    return path


def withdraw(index: Path) -> None:
    """Remove this process's file; a newer server's file for the same index is left alone."""
    path = beacon_path(index)
    with contextlib.suppress(OSError, ValueError):
        if json.loads(path.read_text())["pid"] == os.getpid():
            path.unlink()


def find_server(index: Path) -> str | None:
    """The URL of a live `rag serve` of `index`, or None."""
    import httpx

    try:
        found = json.loads(beacon_path(index).read_text())
        os.kill(int(found["pid"]), 0)  # raises when no such process
        if Path(found["index"]) != Path(index).expanduser().resolve():
            return None
        healthy = httpx.get(f"{found['url']}/health", timeout=HEALTH_TIMEOUT_S).status_code == 200
    except (OSError, ValueError, KeyError, TypeError, httpx.HTTPError):
        return None
    return found["url"] if healthy else None


class RemoteError(RuntimeError):
    """The server refused or failed a request (its status and message)."""


class RemoteTurn:
    """One question asked of a server: iterate for the streamed pieces; `answer` once done."""

    def __init__(self, question: str, events: Iterator[dict]):
        self.question = question
        self._events = events
        self.answer: Answer | None = None
        self.session_id: str | None = None

    def __iter__(self) -> Iterator[str]:
        """The answer's pieces; the "Sources:" list the server streams after them is left out
        (the caller prints the sources from `answer`, as for a local answer)."""
        held = None  # each piece waits for the next chunk: the last one may be the sources list
        extras: dict = {}
        for chunk in self._events:
            choice = (chunk.get("choices") or [None])[0]
            if choice is None:
                continue
            if choice.get("finish_reason"):
                extras = chunk  # the last chunk: ragstack's fields; the stream ends after it
                continue
            content = (choice.get("delta") or {}).get("content")
            if content:
                if held is not None:
                    yield held
                held = content
        self.session_id = extras.get("session_id")
        self.answer = Answer.from_dict({**extras, "question": self.question})
        if held is not None and held != sources_list(self.answer):
            yield held


class RemoteChat:
    """`ask` and `turn` as rag.conversation's chat has them, answered by a running server
    through its OpenAI-compatible endpoint (plain httpx: the openai client costs 0.5 s to import,
    half of what a warm answer may add)."""

    def __init__(self, url: str, api_key: str | None = None, collection: str | None = None):
        import httpx

        self.url = url
        self.collection = collection
        headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
        self.http = httpx.Client(base_url=url, headers=headers, timeout=httpx.Timeout(600, connect=5))

    def turn(self, question: str, session_id: str | None = None) -> RemoteTurn:
        body = {"model": self.collection or "default", "stream": True,
                "messages": [{"role": "user", "content": question}]}
        if session_id:
            body["session_id"] = session_id
        return RemoteTurn(question, self._events(body))

    def _events(self, body: dict) -> Iterator[dict]:
        with self.http.stream("POST", "/v1/chat/completions", json=body) as response:
            if response.status_code != 200:
                response.read()
                raise RemoteError(f"HTTP {response.status_code}: {response.text[:300]}")
            for line in response.iter_lines():
                if line.startswith("data: ") and line != "data: [DONE]":
                    yield json.loads(line[len("data: "):])

    def ask(self, question: str, session_id: str | None = None) -> Answer:
        turn = self.turn(question, session_id)
        for _ in turn:
            pass
        assert turn.answer is not None
        return turn.answer

    def close(self) -> None:
        self.http.close()


def open_remote(settings) -> RemoteChat | None:
    """A chat through the running server of `settings.index`, or None (none, or RAG_USE_SERVER
    is off). The key: RAG_SERVER_KEY, else the first of RAG_API_KEYS (the server's own, where
    both run in one shell)."""
    if not settings.use_server:
        return None
    url = find_server(settings.index)
    if url is None:
        return None
    key = settings.server_key or next((k.strip() for k in settings.api_keys.split(",") if k.strip()), None)
    return RemoteChat(url, key, settings.collection)

