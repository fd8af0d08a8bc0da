"""The `rag` command as a user runs it: real subprocesses, exit codes, JSON output."""

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import rag_cli
from pdfs import make_pdf

from indexes import IndexStore


def test_cli_end_to_end(corpus: Path, tmp_path: Path) -> None:
    index = tmp_path / "cli-index"
    (corpus / "broken.pdf").write_text("not a pdf")
    first = rag_cli("ingest", str(corpus), "--index", str(index), "-q")
    assert first.returncode == 1, first.stderr  # one file failed, the rest went in
    assert "broken.pdf" in first.stdout and "not a PDF" in first.stdout
    (corpus / "broken.pdf").unlink()
    assert rag_cli("ingest", str(corpus), "--index", str(index), "-q").returncode == 0

    found = rag_cli("search", "salty ocean under ice", "--json", "-k", "2", env={"RAG_INDEX": str(index)})
    assert found.returncode == 0, found.stderr
    results = json.loads(found.stdout)
    assert len(results) == 2 and results[0]["doc"] == "space.pdf" and results[0]["page_end"] == 4

    status = json.loads(rag_cli("status", "--index", str(index), "--json").stdout)
    assert status["documents"] == 3 and status["index_factory"] == "Flat" and status["dimension"] == 384
    listed = json.loads(rag_cli("docs", "list", "--index", str(index), "--json").stdout)
    assert {d["name"] for d in listed} == {"plants.pdf", "space.pdf", "zoo.pdf"}

    assert rag_cli("docs", "remove", "space.pdf", "--index", str(index)).returncode == 0
    assert rag_cli("docs", "remove", "space.pdf", "--index", str(index)).returncode == 2
    listed = json.loads(rag_cli("docs", "list", "--index", str(index), "--json").stdout)
    assert "space.pdf" not in {d["name"] for d in listed}


def test_collections_on_the_command_line(corpus: Path, tmp_path: Path) -> None:
    env = {"RAG_INDEX": str(tmp_path / "index")}
    ingested = rag_cli("ingest", str(corpus / "space.pdf"), "--collection", "astro", "-q", env=env)
    assert ingested.returncode == 0, ingested.stderr
    found = rag_cli("search", "salty ocean under ice", "--collection", "astro", "--json", env=env)
    assert found.returncode == 0 and json.loads(found.stdout)[0]["doc"] == "space.pdf", found.stderr
    # the collection lives beside the default index, which stays empty
    assert (tmp_path / "collections" / "astro" / "index" / "CURRENT").is_file()
    assert rag_cli("search", "salty ocean", env=env).returncode == 2
    bad = rag_cli("search", "x", "--collection", "../escape", env=env)
    assert bad.returncode == 2 and "invalid collection name" in bad.stderr


def test_cli_errors_have_exit_codes(corpus: Path, tmp_path: Path) -> None:
    missing = rag_cli("search", "anything", "--index", str(tmp_path / "none"))
    assert missing.returncode == 2 and "no index" in missing.stderr
    assert rag_cli("ingest", str(tmp_path / "nowhere"), "--index", str(tmp_path / "i")).returncode == 2
    assert rag_cli("search", "x", "--mode", "sparse", "--index", str(tmp_path / "i")).returncode == 2

    index = tmp_path / "locked-index"
    make_pdf(corpus / "extra.pdf", ["extra"])
    with IndexStore(index).writer():
        locked = rag_cli("ingest", str(corpus), "--index", str(index), "-q")
    assert locked.returncode == 3 and "locked" in locked.stderr

    assert rag_cli("ingest", str(corpus), "--index", str(index), "-q").returncode == 0
    mixed = rag_cli("ingest", str(corpus), "--index", str(index), "--model", str(tmp_path), "-q")
    assert mixed.returncode == 2 and "refusing to mix" in mixed.stderr


def test_settings_come_from_toml_and_env(corpus: Path, tmp_path: Path) -> None:
    config = tmp_path / "ragstack.toml"
    config.write_text(f'index = "{tmp_path / "toml-index"}"\nchunk_size = 120\n')
    done = rag_cli("ingest", str(corpus), "-q", env={"RAG_CONFIG": str(config), "RAG_CHUNK_OVERLAP": "20"})
    assert done.returncode == 0, done.stderr
    with IndexStore(tmp_path / "toml-index").open() as snap:
        manifest = snap.manifest
    assert (manifest.chunk_size, manifest.chunk_overlap) == (120, 20)


@pytest.mark.slow
def test_demo_answers_with_citations_and_says_only_what_a_newcomer_needs(tmp_path: Path) -> None:
    """`make demo` on a fresh machine: one line about converting the bundled generator, no
    de-quantisation bar, no bitsandbytes warning; it ends with a cited answer."""
    cache = {"XDG_CACHE_HOME": str(tmp_path / "cache")}  # no converted generator yet
    done = rag_cli("demo", "--workdir", str(tmp_path / "demo"), env=cache)
    assert done.returncode == 0, done.stderr
    searched, asked = done.stdout.split("\nask: ")
    assert "ingested 2 new PDF(s)" in searched and re.search(r"^1\. \S+\.pdf pp?\.\d", searched, re.M)
    question, *answer = asked.splitlines()
    source_line = re.compile(r"  \[(\d+)\] \S+\.pdf pp?\.[\d-]+ ?(cited|matched|)(  \(also in .+\))?$")
    sources = [source_line.match(line) for line in answer]
    numbers = [int(m[1]) for m in sources if m]
    assert question == "How does re-indexing stay safe when the process crashes?"
    assert any(m is None and line.strip() for line, m in zip(answer, sources, strict=True))  # the answer
    assert numbers == list(range(1, len(numbers) + 1)) and numbers  # then its sources, numbered
    assert any(m[2] for m in sources if m), done.stdout  # at least one of them cited
    assert done.stderr.count("converting SmolLM2-135M-Instruct GGUF to a Hugging Face copy") == 1
    assert "gemm_4bit" not in done.stderr and "de-quantiz" not in done.stderr.lower()
    assert "Loading weights" not in done.stderr, done.stderr

    # the next start finds the copy: it loads both models silently, and without bitsandbytes
    loaded = subprocess.run(
        [sys.executable, "-c", "import sys\n"
         "from rag.embedding import Embedder\n"
         "from rag.generation import TransformersGenerator\n"
         "Embedder(), TransformersGenerator()\n"
         "print('bitsandbytes' in sys.modules)"],
        capture_output=True, text=True, timeout=300, env={**os.environ, **cache},
    )
    assert loaded.returncode == 0 and loaded.stderr == "", loaded.stderr
    assert loaded.stdout.strip() == "False"  # imported by QLoRA alone (llm_finetune.model)
