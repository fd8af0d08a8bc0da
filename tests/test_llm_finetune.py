"""QLoRA on the real SmolLM2-135M (bitsandbytes NF4 on the CPU): a few steps lower the loss, the
adapter answers through a real `rag serve --adapter` process, and the merged export loads in
transformers alone and generates what the adapter does."""

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
from conftest import free_port
from test_llm_examples import make_squad_index
from test_serve_vllm import VLLM_PYTHON

from llm_finetune.examples import build_examples
from llm_finetune.model import LoraSettings, load_trainable
from llm_finetune.train import TrainConfig, train_adapter
from rag.answer import Answerer, build_messages
from rag.generation import OpenAIGenerator, TransformersGenerator, generate
from rag.retrieval import Retriever

QUESTION = "When did the Shinkansen open?"
pytestmark = pytest.mark.slow  # real QLoRA training and a served model: minutes


@pytest.fixture(scope="module")
def adapter(tmp_path_factory, embedder):
    """12 QLoRA steps on the mini SQuAD corpus (trained once for the module)."""
    tmp_path = tmp_path_factory.mktemp("qlora")
    questions, settings, retriever = make_squad_index(tmp_path / "squad", embedder)
    examples = build_examples(questions, retriever, answer_k=2, refusal_fraction=0.3, seed=1)
    model, tokenizer, method = load_trainable("SmolLM2-135M-Instruct", LoraSettings(rank=8, alpha=16))
    assert method == "qlora"
    assert any("Linear4bit" in type(m).__name__ for m in model.modules())  # the base really is 4-bit
    config = TrainConfig(batch_size=2, learning_rate=1e-3, max_steps=12, logging_steps=1, save_steps=100)
    trained = train_adapter(model, tokenizer, examples, tmp_path / "work", config, progress=False)
    out = tmp_path / "adapter"
    model.save_pretrained(str(out))
    (out / "ragstack-adapter.json").write_text(
        json.dumps({"base": "SmolLM2-135M-Instruct", "method": method})
    )
    return out, trained, settings


def test_qlora_steps_lower_the_loss_and_serve(adapter, tmp_path: Path) -> None:
    out, trained, settings = adapter
    losses = [e["loss"] for e in trained.log]
    assert trained.steps == 12 and len(losses) == 12
    assert sum(losses[-3:]) / 3 < 0.6 * sum(losses[:3]) / 3, losses
    assert (out / "adapter_config.json").is_file()

    # "mark" and "generated": the model's own words, not source sentences put in place of
    # unsupported ones nor quoted in place of generating
    options = {"unsupported": "mark", "answer_style": "generated"}
    tuned = Answerer(Retriever(settings.index), TransformersGenerator(adapter=str(out)), **options)
    expected = tuned.answer(QUESTION)
    base = Answerer(Retriever(settings.index), TransformersGenerator(), **options).answer(QUESTION)
    assert expected.text != base.text  # the adapter changes what the model writes

    port = free_port()
    env = {
        **os.environ, "RAG_INDEX": str(settings.index), "RAG_SESSIONS": str(tmp_path / "s.sqlite"),
        "RAG_UNSUPPORTED": "mark",
        "RAG_ANSWER_STYLE": "generated",
    }
    server = subprocess.Popen(
        [sys.executable, "-m", "rag.cli", "serve", "--port", str(port), "--adapter", str(out)],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    try:
        client = openai.OpenAI(base_url=f"http://127.0.0.1:{port}/v1", api_key="-", timeout=300)
        deadline = time.monotonic() + 180
        while True:
            try:
                client.models.list()
                break
            except openai.APIConnectionError:
                assert server.poll() is None and time.monotonic() < deadline, (
                    "rag serve --adapter did not start"
                )
                time.sleep(0.5)
        reply = client.chat.completions.create(
            model="ragstack", messages=[{"role": "user", "content": QUESTION}]
        )
        assert reply.choices[0].message.content.startswith(expected.text)
    finally:
        server.send_signal(signal.SIGTERM)
        server.wait(30)

    missing = subprocess.run(
        [sys.executable, "-m", "rag.cli", "serve", "--adapter", str(tmp_path)],
        env=env,
        capture_output=True,
        text=True,
    )
    assert missing.returncode == 2 and "adapter_config.json" in missing.stderr


def test_merged_export_loads_in_transformers(adapter, tmp_path: Path) -> None:
    from transformers import AutoModelForCausalLM, AutoTokenizer
    from typer.testing import CliRunner

    from rag.cli import app

    out, _, _ = adapter
    merged_dir = tmp_path / "merged"
    result = CliRunner().invoke(app, ["export-merged", str(out), "--out", str(merged_dir)])
    assert result.exit_code == 0, result.output
    model = AutoModelForCausalLM.from_pretrained(merged_dir)
    tokenizer = AutoTokenizer.from_pretrained(merged_dir)
    assert not any("lora" in name for name, _ in model.named_parameters())  # plain full weights
    messages = [{"role": "user", "content": QUESTION}]
    merged = TransformersGenerator(str(merged_dir))
    assert merged.tokenizer.eos_token == tokenizer.eos_token
    assert generate(merged, messages, 12) == generate(TransformersGenerator(adapter=str(out)), messages, 12)


def test_finetune_llm_command_end_to_end(tmp_path: Path, embedder) -> None:
    """The whole command on the mini SQuAD file (2 steps: plumbing, not quality): split by article,
    base and tuned scored, adapter, card and before/after report written."""
    from typer.testing import CliRunner

    from rag.cli import app

    make_squad_index(tmp_path / "squad", embedder)
    out = tmp_path / "adapter"
    result = CliRunner().invoke(
        app,
        [
            "finetune-llm",
            "--data",
            str(tmp_path / "squad" / "mini-squad.json"),
            "--out",
            str(out),
            "--index",
            str(tmp_path / "index"),
            "--max-steps",
            "2",
            "--batch-size",
            "2",
            "--rank",
            "4",
            "--test-fraction",
            "0.5",
            "--max-tokens",
            "16",
        ],
    )
    assert result.exit_code == 0, result.output
    info = json.loads((out / "eval" / "finetune.json").read_text())
    assert info["method"] == "qlora" and info["train"]["steps"] == 2
    assert info["test_questions"] > 0 and info["train_questions"] > 0
    assert set(info["before"]["answers"]) == {"exact_match", "f1", "citation_valid", "false_refusals"}
    assert (out / "adapter_config.json").is_file() and (out / "eval" / "compare.md").is_file()
    card = (out / "README.md").read_text()
    assert "## ragstack fine-tuning" in card and "LoRA rank 4" in card and "| answers | " in card
    assert "loss_log" not in json.loads((out / "ragstack-finetune.json").read_text())
    report = (out / "eval" / "tuned" / "report.md").read_text()
    assert "| id | answerable | reply | F1 | valid citation | refused |" in report
    table = report.split("## Per question")[1]
    assert table.count("\n| ") - 2 == info["test_prompts"]  # one row per scored prompt


def test_finetune_llm_from_an_index_without_labels(tmp_path: Path, embedder) -> None:
    """No QA file: cloze questions are written from the index's chunks and tuned on (2 steps:
    plumbing, not quality)."""
    from typer.testing import CliRunner

    from rag.cli import app

    _, settings, _ = make_squad_index(tmp_path / "squad", embedder)
    out = tmp_path / "adapter"
    args = ["finetune-llm", "--index", str(settings.index), "--out", str(out), "--synthetic", "20"]
    args += ["--max-steps", "2", "--batch-size", "2", "--rank", "4", "--test-fraction", "0.5"]
    result = CliRunner().invoke(app, [*args, "--max-tokens", "16"])
    assert result.exit_code == 0, result.output
    info = json.loads((out / "eval" / "finetune.json").read_text())
    assert info["data"] == "4 synthetic (cloze) questions" and info["train"]["steps"] == 2
    assert info["train_questions"] + info["test_questions"] == 4
    assert (out / "adapter_config.json").is_file()

    missing = CliRunner().invoke(app, ["finetune-llm", "--index", str(tmp_path / "none"), "--out", str(out)])
    assert missing.exit_code == 2 and "no index" in missing.output


@pytest.mark.skipif(not VLLM_PYTHON.exists(), reason=f"no vLLM environment at {VLLM_PYTHON} (make vllm-venv)")
def _opening(text: str) -> list[str]:
    """The first words, citation markers aside (rag serve re-numbers and attributes citations)."""
    return re.sub(r"\[[\d,\s]*\]", " ", text).split()[:4]


def test_vllm_serves_the_adapter_through_rag_serve(adapter, tmp_path: Path) -> None:
    """`rag serve --engine vllm --adapter DIR`: vLLM loads the adapter with --enable-lora beside
    the base, and rag serve's answers come from the adapter.

    vLLM computes in bf16 and transformers here in fp32, so a 12-step adapter's greedy answers
    may part ways between the engines (CI saw "The documents do not contain..." against "the
    document does not mention..."): the comparison is within vLLM, on the very prompt rag serve
    builds, once through the adapter and once through the base."""
    out, _, settings = adapter
    messages = build_messages(QUESTION, Answerer(Retriever(settings.index), None).retrieve(QUESTION))
    port = free_port()
    env = {
        **os.environ,
        "RAG_INDEX": str(settings.index),
        "RAG_SESSIONS": str(tmp_path / "s.sqlite"),
        "RAG_VLLM_PYTHON": str(VLLM_PYTHON),
        "RAG_API_KEYS": "",
        "RAG_ANSWER_STYLE": "generated",  # what the adapter writes is checked, not the sources' words
    }
    command = [sys.executable, "-m", "rag.cli", "serve", "--engine", "vllm", "--adapter", str(out)]
    log = tmp_path / "vllm.log"
    server = subprocess.Popen(
        [*command, "--port", str(port), "--log", str(log)],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    output: list[str] = []
    threading.Thread(target=lambda: output.extend(ln.decode() for ln in server.stdout), daemon=True).start()
    try:
        deadline = time.monotonic() + 900
        while "Application startup complete" not in "".join(output):
            assert server.poll() is None and time.monotonic() < deadline, "".join(output)[-3000:] + (
                log.read_text()[-3000:] if log.exists() else ""
            )
            time.sleep(1)
        vllm_url = re.search(r"vLLM ready at (\S+)", "".join(output)).group(1)
        served = {m["id"] for m in httpx.get(f"{vllm_url}/models").json()["data"]}
        assert served == {"SmolLM2-135M-Instruct", out.name}  # the base and the adapter by name
        client = openai.OpenAI(base_url=f"http://127.0.0.1:{port}/v1", api_key="-", timeout=300)
        reply = client.chat.completions.create(
            model="ragstack", messages=[{"role": "user", "content": QUESTION}]
        )
        through_adapter = generate(OpenAIGenerator(vllm_url, out.name), messages, 160)
        through_base = generate(OpenAIGenerator(vllm_url, "SmolLM2-135M-Instruct"), messages, 160)
        assert _opening(through_adapter) != _opening(through_base)  # so the opening tells which answered
        assert _opening(reply.choices[0].message.content) == _opening(through_adapter), (
            reply.choices[0].message.content,
            through_adapter,
        )
    finally:
        server.send_signal(signal.SIGTERM)
        try:
            server.wait(90)
        except subprocess.TimeoutExpired:
            os.killpg(server.pid, signal.SIGKILL)
            server.wait()


def test_training_resumes_from_its_last_checkpoint(tmp_path: Path, embedder) -> None:
    """An interrupted run (here: one that stopped at step 2) goes on from its checkpoint; plain
    LoRA keeps this quick, the Trainer's resume is the same for QLoRA."""
    questions, _, retriever = make_squad_index(tmp_path / "squad", embedder)
    examples = build_examples(questions, retriever, answer_k=2, refusal_fraction=0.0)

    def run(max_steps: int, resume: bool):
        model, tokenizer, method = load_trainable(
            "SmolLM2-135M-Instruct", LoraSettings(rank=4), quantize=False
        )
        assert method == "lora"
        config = TrainConfig(batch_size=2, max_steps=max_steps, logging_steps=1, save_steps=2)
        return train_adapter(
            model, tokenizer, examples, tmp_path / "work", config, resume=resume, progress=False
        )

    first = run(2, resume=False)
    assert (tmp_path / "work" / "checkpoints" / "checkpoint-2").is_dir()
    second = run(4, resume=True)
    assert second.resumed_from.endswith("checkpoint-2")
    assert second.steps == 4 and [e["step"] for e in second.log] == [1, 2, 3, 4]
    # steps 1-2 come back from the checkpoint as logged: a fresh start would log other gradients
    assert second.log[:2] == first.log
