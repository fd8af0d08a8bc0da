"""The `rag` command as a user runs it: real subprocesses, exit codes, JSON output."""

import json
import os
import subprocess
import sys
from pathlib import Path

from pdfs import make_pdf

from indexes import IndexStore


def rag(*args: str, env: dict | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "rag.cli", *args], capture_output=True, text=True, timeout=300,
        env={**os.environ, **(env or {})},
    )


def test_cli_end_to_end(corpus: Path, tmp_path: Path) -> None:
    index = tmp_path / "cli-index"
    (corpus / "broken.pdf").write_text("not a pdf")
    first = rag("ingest", str(corpus), "--index", str(index), "-q")
    assert first.returncode == 1, first.stderr  # one file failed, the rest went in
    assert "broken.pdf" in first.stdout and "not a PDF" in first.stdout
    (corpus / "broken.pdf").unlink()
    assert rag("ingest", str(corpus), "--index", str(index), "-q").returncode == 0

    found = rag("search", "salty ocean under ice", "--json", "-k", "2", env={"RAG_INDEX": str(index)})
    assert found.returncode == 0, found.stderr
    results = json.loads(found.stdout)
    assert len(results) == 2 and results[0]["doc"] == "space.pdf" and results[0]["page_end"] == 4

    status = json.loads(rag("status", "--index", str(index), "--json").stdout)
    assert status["documents"] == 3 and status["index_factory"] == "Flat" and status["dimension"] == 384
    listed = json.loads(rag("docs", "list", "--index", str(index), "--json").stdout)
    assert {d["name"] for d in listed} == {"plants.pdf", "space.pdf", "zoo.pdf"}

    assert rag("docs", "remove", "space.pdf", "--index", str(index)).returncode == 0
    assert rag("docs", "remove", "space.pdf", "--index", str(index)).returncode == 2
    listed = json.loads(rag("docs", "list", "--index", str(index), "--json").stdout)
    assert "space.pdf" not in {d["name"] for d in listed}


def test_cli_errors_have_exit_codes(corpus: Path, tmp_path: Path) -> None:
    missing = rag("search", "anything", "--index", str(tmp_path / "none"))
    assert missing.returncode == 2 and "no index" in missing.stderr
    assert rag("ingest", str(tmp_path / "nowhere"), "--index", str(tmp_path / "i")).returncode == 2
    assert rag("search", "x", "--mode", "sparse", "--index", str(tmp_path / "i")).returncode == 2

    index = tmp_path / "locked-index"
    make_pdf(corpus / "extra.pdf", ["extra"])
    with IndexStore(index).writer():
        locked = rag("ingest", str(corpus), "--index", str(index), "-q")
    assert locked.returncode == 3 and "locked" in locked.stderr

    assert rag("ingest", str(corpus), "--index", str(index), "-q").returncode == 0
    mixed = rag("ingest", str(corpus), "--index", str(index), "--model", str(tmp_path), "-q")
    assert mixed.returncode == 2 and "refusing to mix" in mixed.stderr


def test_settings_come_from_toml_and_env(corpus: Path, tmp_path: Path) -> None:
    config = tmp_path / "ragstack.toml"
    config.write_text(f'index = "{tmp_path / "toml-index"}"\nchunk_size = 120\n')
    done = rag("ingest", str(corpus), "-q", env={"RAG_CONFIG": str(config), "RAG_CHUNK_OVERLAP": "20"})
    assert done.returncode == 0, done.stderr
    manifest = IndexStore(tmp_path / "toml-index").open().manifest
    assert (manifest.chunk_size, manifest.chunk_overlap) == (120, 20)
