"""Jobs that change the index, on a real uvicorn server: they wait for a lock another process
holds instead of failing, bounded waits answer 202 with the job, a re-index prunes only what the
server manages, a file that fails to parse does not stay, and nothing a client sees names a
server path or process id."""

from __future__ import annotations

import re
import time
from pathlib import Path

import httpx
import pytest
from live_server import Server
from pdfs import lorem, make_pdf

from indexes import IndexStore
from rag.ingest import ingest
from rag.settings import Settings
from serve.app import create_app
from serve.jobs import JobRunner, public_text

ABSOLUTE = re.compile(r"(?<![\w.:/])/(?!v1/)[\w.-]+/")


@pytest.fixture
def service(tmp_path: Path, embedder):
    def start(**fields) -> tuple[Server, httpx.Client, Settings]:
        settings = Settings(index=tmp_path / "index", sessions=tmp_path / "s.sqlite", **fields)
        server = Server(create_app(settings, embedder=embedder))
        started.append(server)
        return server, httpx.Client(base_url=server.url, timeout=120), settings

    started: list[Server] = []
    yield start
    for server in started:
        server.stop()


def upload(http: httpx.Client, *paths: Path, wait: bool = True) -> httpx.Response:
    files = [("files", (p.name, p.read_bytes(), "application/pdf")) for p in paths]
    return http.post("/v1/documents", files=files, params={"wait": wait})


def finished(http: httpx.Client, job: dict, within_s: float = 120) -> dict:
    deadline = time.monotonic() + within_s
    while job["status"] in ("queued", "running"):
        assert time.monotonic() < deadline, job
        time.sleep(0.1)
        job = http.get(f"/v1/jobs/{job['id']}").json()
    return job


def names(http: httpx.Client) -> set[str]:
    return {d["id"] for d in http.get("/v1/documents").json()["data"]}


def test_jobs_wait_for_an_index_another_process_writes(service, tmp_path: Path) -> None:
    _, http, settings = service(lock_wait_s=60, wait_timeout_s=1.5)
    pdf = make_pdf(tmp_path / "koala.pdf", ["Koalas sleep up to twenty hours a day. " + lorem("zoo", 5)])
    with IndexStore(settings.index).writer():  # `rag ingest` from a terminal, say
        response = upload(http, pdf)  # ?wait=true: answered after wait_timeout_s, not done
        assert response.status_code == 202
        job = response.json()["job"]
        assert job["status"] == "running" and job["lock_waits"] > 0 and job["error"] is None
    job = finished(http, job)
    assert job["status"] == "done", job
    assert names(http) == {"koala.pdf"}

    with IndexStore(settings.index).writer():
        response = http.delete("/v1/documents/koala.pdf")
        assert response.status_code == 202 and not response.json()["deleted"]
        job = response.json()["job"]
        assert job["kind"] == "delete" and job["status"] == "running"
    assert finished(http, job)["status"] == "done"
    assert names(http) == set()


def test_a_job_that_waited_in_vain_names_no_path_or_pid(service, tmp_path: Path) -> None:
    _, http, settings = service(lock_wait_s=0.5, wait_timeout_s=30)
    pdf = make_pdf(tmp_path / "koala.pdf", ["Koalas sleep up to twenty hours a day."])
    with IndexStore(settings.index).writer():
        job = upload(http, pdf).json()["job"]
    assert job["status"] == "failed" and job["error"].startswith("IndexLocked"), job
    assert str(tmp_path) not in str(job) and "pid" not in job["error"] and not ABSOLUTE.search(job["error"])


def test_reindex_prunes_only_uploads_and_failed_uploads_go(service, tmp_path: Path, embedder) -> None:
    _, http, settings = service()
    outside = tmp_path / "elsewhere"
    outside.mkdir()
    cli = make_pdf(outside / "cli.pdf", ["Penguins huddle together against the Antarctic winter."])
    ingest([cli], settings, progress=False, embedder=embedder)  # from a terminal
    kept = make_pdf(tmp_path / "kept.pdf", ["Otters hold hands while they sleep on the water."])
    gone = make_pdf(tmp_path / "gone.pdf", ["Owls turn their heads three quarters of a circle."])
    assert upload(http, kept, gone).json()["job"]["status"] == "done"
    assert names(http) == {"cli.pdf", "kept.pdf", "gone.pdf"}

    broken = tmp_path / "broken.pdf"
    broken.write_bytes(b"%PDF-1.4\n" + b"\x00garbage" * 50)
    job = upload(http, broken).json()["job"]
    assert job["status"] == "done", job
    [result] = job["result"]["files"]
    assert (result["name"], result["status"], result["removed"]) == ("broken.pdf", "failed", True)
    uploads = settings.index.parent / "index-documents"
    assert not (uploads / "broken.pdf").exists()

    cli.unlink()  # the terminal's file moved away: not the server's to prune
    (uploads / "gone.pdf").unlink()  # an upload taken away: pruned
    job = finished(http, http.post("/v1/reindex").json())
    assert job["status"] == "done", job
    assert names(http) == {"cli.pdf", "kept.pdf"}
    statuses = {f["name"]: f["status"] for f in job["result"]["files"]}
    assert statuses == {"kept.pdf": "unchanged", "gone.pdf": "removed"}  # broken.pdf is not parsed again
    for text in (str(job), str(upload(http, broken).json())):
        assert str(tmp_path) not in text and "path" not in text


def test_finished_jobs_expire() -> None:
    runner = JobRunner(keep_s=0.3, keep=2)
    jobs = [runner.wait(runner.submit("x", lambda job: {})) for _ in range(4)]
    runner.submit("x", lambda job: {})
    assert [runner.get(j.id) is not None for j in jobs] == [False, False, True, True]
    time.sleep(0.4)
    assert all(runner.get(j.id) is None for j in jobs)
    runner.shutdown()


def test_public_text_keeps_names_and_drops_folders_and_pids(tmp_path: Path) -> None:
    index, uploads = tmp_path / "index", tmp_path / "index-documents"
    text = (
        f"index {index} is locked by pid 4242; cannot read {uploads}/a b.pdf; "
        "model /home/someone/.cache/model.bin; see POST /v1/reindex"
    )
    assert public_text(text, [index, uploads]) == (
        "index <server> is locked by pid ?; cannot read a b.pdf; model model.bin; see POST /v1/reindex"
    )
