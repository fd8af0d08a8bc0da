"""Warm answers (rag.remote): `rag ask` and `rag chat`, run as a user does, answer through a real
server of the same index (found by the file `rag serve` leaves beside it) and fall back to
answering themselves when there is none, or it is gone."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import httpx
import pytest
from conftest import make_corpus, rag_cli
from live_server import Server

from rag.ingest import ingest
from rag.remote import announce, beacon_path, find_server, withdraw
from rag.settings import Settings
from serve.app import create_app

KEY = "warm-key-1"
QUESTION = "When do zebras migrate across the Serengeti?"


@pytest.fixture(scope="module")
def served(tmp_path_factory, embedder, generator):
    """An index of the corpus, served by a real uvicorn on 127.0.0.1 that announced itself."""
    root = tmp_path_factory.mktemp("warm")
    folder = make_corpus(root / "pdfs")
    settings = Settings(index=root / "index", sessions=root / "sessions.sqlite", api_keys=KEY)
    ingest([folder], settings, progress=False, embedder=embedder)
    server = Server(create_app(settings, generator, embedder))
    announce(settings.index, server.url)
    yield settings, server
    withdraw(settings.index)
    server.stop()


def sessions(server: Server) -> list[dict]:
    response = httpx.get(f"{server.url}/v1/sessions", headers={"Authorization": f"Bearer {KEY}"})
    assert response.status_code == 200, response.text
    return response.json()["data"]


def cli_env(settings: Settings) -> dict:
    return {"RAG_INDEX": str(settings.index), "RAG_SESSIONS": str(settings.index.parent / "cli.sqlite"),
            "RAG_SERVER_KEY": KEY, "RAG_API_KEYS": ""}


def test_rag_ask_answers_through_the_running_server(served) -> None:
    settings, server = served
    assert find_server(settings.index) == server.url
    before = len(sessions(server))
    done = rag_cli("ask", QUESTION, "--json", env=cli_env(settings), timeout=300)
    assert done.returncode == 0, done.stderr
    answer = json.loads(done.stdout)
    assert answer["question"] == QUESTION and answer["found"]
    assert any(s["doc"] == "zoo.pdf" and s["page_start"] <= 2 <= s["page_end"] for s in answer["sources"])
    assert len(sessions(server)) == before + 1  # the server answered it
    # the same answer the server gives to a client of its own
    direct = httpx.post(
        f"{server.url}/v1/chat/completions", headers={"Authorization": f"Bearer {KEY}"}, timeout=300,
        json={"messages": [{"role": "user", "content": QUESTION}]},
    ).json()
    assert direct["choices"][0]["message"]["content"].startswith(answer["text"])


def test_rag_chat_keeps_one_server_session(served) -> None:
    settings, server = served
    before = len(sessions(server))
    done = rag_cli("chat", env=cli_env(settings), stdin=f"{QUESTION}\nAnd in which month?\n", timeout=300)
    assert done.returncode == 0, done.stderr
    assert f"answering through rag serve at {server.url}" in done.stdout
    assert "zoo.pdf" in done.stdout
    assert "Sources:" not in done.stdout  # the server's list is printed once, as the CLI's own
    after = sessions(server)
    assert len(after) == before + 1
    turns = httpx.get(f"{server.url}/v1/sessions/{after[0]['id']}",
                      headers={"Authorization": f"Bearer {KEY}"}).json()
    asked = [t["content"] for t in turns["turns"] if t["role"] == "user"]
    assert asked == [QUESTION, "And in which month?"]  # the follow-up went on the same session


def test_without_a_server_the_command_answers_itself(served, tmp_path) -> None:
    """A file left by a server that died (its process is gone) is ignored; so is a server of
    another index; RAG_USE_SERVER=false ignores a live one."""
    settings, server = served
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    other = Settings(index=tmp_path / "other")
    beacon_path(other.index).write_text(json.dumps({"url": server.url, "pid": dead.pid,
                                                     "index": str(other.index.resolve())}))
    assert find_server(other.index) is None
    beacon_path(other.index).write_text(json.dumps({"url": server.url, "pid": os.getpid(),
                                                     "index": str(settings.index.resolve())}))
    assert find_server(other.index) is None  # alive, but serving another index

    before = len(sessions(server))
    done = rag_cli("ask", QUESTION, "--json", env={**cli_env(settings), "RAG_USE_SERVER": "false"},
                   timeout=300)
    assert done.returncode == 0, done.stderr
    assert any(s["doc"] == "zoo.pdf" for s in json.loads(done.stdout)["sources"])
    assert len(sessions(server)) == before  # answered here


def test_a_server_only_removes_its_own_file(tmp_path) -> None:
    index = tmp_path / "index"
    announce(index, "http://127.0.0.1:9")
    path = beacon_path(index)
    data = json.loads(path.read_text())
    path.write_text(json.dumps({**data, "pid": data["pid"] + 1}))  # a newer server's
    withdraw(index)
    assert path.exists()
    path.write_text(json.dumps(data))
    withdraw(index)
    assert not path.exists()


def test_rag_serve_announces_itself_while_it_runs(tmp_path) -> None:
    import signal
    import time

    from conftest import free_port

    index, port = tmp_path / "index", free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "rag.cli", "serve", "--index", str(index), "--port", str(port)],
        env={**os.environ, "RAG_API_KEYS": KEY, "RAG_SESSIONS": str(tmp_path / "s.sqlite")},
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )
    try:
        deadline = time.monotonic() + 120
        while find_server(index) is None:
            assert process.poll() is None, process.stdout.read()
            assert time.monotonic() < deadline, "rag serve did not announce itself"
            time.sleep(0.3)
        assert find_server(index) == f"http://127.0.0.1:{port}"
    finally:
        process.send_signal(signal.SIGTERM)
        process.wait(30)
    assert not beacon_path(index).exists()
