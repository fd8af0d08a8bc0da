"""A service you can put on a network: keys checked before the body, bounded requests,
collections with scoped keys, server-made sessions, a schema fuzz and a soak, on a real uvicorn
server on 127.0.0.1 with the real MiniLM and real PDFs.

The generator is `QuickGenerator`, a tiny fake that answers at once: these tests are about the
service's plumbing (keys, limits, collections, concurrency), not about answers.
"""

from __future__ import annotations

from pathlib import Path

import httpx
import openai
import pytest
from live_server import Server
from pdfs import lorem, make_pdf
from service_probes import (
    ADMIN,
    FINANCE_READER,
    FINANCE_SECRET,
    FINANCE_WRITER,
    OTHER_SECRET,
    OTHER_WRITER,
    QuickGenerator,
    bearer,
    cross_collection,
    fuzz,
    queries_during_job,
    raw_post,
    rss_mb,
    soak,
    start_secured,
)

from rag.settings import Settings
from serve.app import create_app

HI = {"role": "user", "content": "hi"}
LEDGER = {"role": "user", "content": "What does the ledger show?"}


@pytest.fixture(scope="module")
def service(tmp_path_factory, embedder):
    server, settings = start_secured(tmp_path_factory.mktemp("secure"), QuickGenerator(), embedder)
    yield server, settings
    server.stop()


def test_every_path_but_health_needs_a_bearer_key(service) -> None:
    server, _ = service
    assert httpx.get(f"{server.url}/health").status_code == 200
    for path in ("/docs", "/redoc", "/openapi.json", "/v1/models", "/metrics", "/v1/documents"):
        for value in (None, ADMIN, "Bearer wrong", "Basic x"):  # a bare key is not a bearer key
            headers = {"Authorization": value} if value else {}
            assert httpx.get(f"{server.url}{path}", headers=headers).status_code == 401, (path, headers)
        assert httpx.get(f"{server.url}{path}", headers=bearer(ADMIN)).status_code == 200, path


def test_the_key_is_checked_before_the_body_is_read(service) -> None:
    server, _ = service
    before = rss_mb()
    # 150 MB declared, 2 MB sent: a server that read the body first would wait for the rest
    assert raw_post(server.url, "/v1/chat/completions", {}, 150 << 20, 2 << 20) == 401
    assert raw_post(server.url, "/v1/documents", {}, 150 << 20, 2 << 20) == 401
    # with a key, a declared size over the limit is refused before the body is read too
    assert raw_post(server.url, "/v1/chat/completions", bearer(ADMIN), 150 << 20, 2 << 20) == 413
    assert rss_mb() - before < 50


def test_requests_are_bounded_with_clear_messages(service) -> None:
    server, _ = service
    http = httpx.Client(base_url=server.url, headers=bearer(ADMIN), timeout=60)
    before = rss_mb()
    two_mb = {"messages": [{"role": "user", "content": "x" * (2 << 20)}]}
    response = http.post("/v1/chat/completions", json=two_mb)
    assert response.status_code == 413 and "limit" in response.json()["error"]["message"]
    assert rss_mb() - before < 100
    # a chunked body (no Content-Length) is cut off while it is read
    response = http.post("/v1/search", content=iter([b'{"query": "' + b"x" * 65536] * 40))
    assert response.status_code == 413
    for path, body, bound in [
        ("/v1/chat/completions", {"messages": [{"role": "user", "content": "x" * 40_000}]}, "32000"),
        ("/v1/chat/completions", {"messages": [HI] * 101}, "100"),
        ("/v1/chat/completions", {"messages": [HI], "docs": ["a"] * 101}, "100"),
        ("/v1/search", {"query": "x" * 5000}, "4000"),
        ("/v1/search", {"query": "x", "docs": ["d" * 600]}, "512"),
        ("/v1/embeddings", {"input": ["x" * 40_000]}, "32000"),
    ]:
        response = http.post(path, json=body)
        assert response.status_code == 422, (path, response.text[:300])
        assert bound in response.json()["error"]["message"], response.text[:300]
    http.close()


def test_a_key_sees_only_its_collections(service) -> None:
    server, _ = service
    reader = httpx.Client(base_url=server.url, headers=bearer(FINANCE_READER), timeout=60)
    hits = reader.post("/v1/collections/finance/search", json={"query": "ledger revenue"}).json()["results"]
    assert hits and FINANCE_SECRET in hits[0]["text"]
    models = {m["id"] for m in reader.get("/v1/models").json()["data"]}
    assert "finance" in models and "other" not in models and "default" not in models
    # reading is not writing
    pdf = ("files", ("x.pdf", b"%PDF-1.4\n", "application/pdf"))
    assert reader.post("/v1/collections/finance/documents", files=[pdf]).status_code == 403
    assert reader.post("/v1/collections/finance/reindex").status_code == 403
    # chat picks the collection by `model`; the default collection is not this key's
    chat = openai.OpenAI(base_url=f"{server.url}/v1", api_key=FINANCE_READER)
    answer = chat.chat.completions.create(model="finance", messages=[LEDGER])
    assert answer.model_extra["sources"][0]["doc"] == "ledger.pdf"
    with pytest.raises(openai.PermissionDeniedError):
        chat.chat.completions.create(model="ragstack", messages=[HI])
    reader.close()


def test_every_endpoint_with_another_collections_key_is_403_or_404(service) -> None:
    server, _ = service
    with httpx.Client(base_url=server.url, headers=bearer(ADMIN), timeout=60) as admin:
        session = admin.post("/v1/collections/other/sessions").json()["id"]
        job = admin.post("/v1/collections/other/reindex").json()["id"]
    ids = {"doc": "wildlife.pdf", "session": session, "job": job}
    for key in (FINANCE_READER, FINANCE_WRITER):
        attempts, leaks = cross_collection(server.url, key, "other", ids, OTHER_SECRET)
        assert attempts >= 10 and leaks == []
    ids = {"doc": "ledger.pdf"}
    attempts, leaks = cross_collection(server.url, OTHER_WRITER, "finance", ids, FINANCE_SECRET)
    assert leaks == []
    with httpx.Client(base_url=server.url, headers=bearer(OTHER_WRITER), timeout=60) as other:
        assert other.get(f"/v1/collections/other/sessions/{session}").status_code == 404  # admin's
        assert other.get("/v1/collections/other/documents").json()["data"][0]["id"] == "wildlife.pdf"


def test_sessions_are_made_by_the_server_and_belong_to_their_key(service) -> None:
    server, _ = service
    writer = openai.OpenAI(base_url=f"{server.url}/v1", api_key=FINANCE_WRITER)
    reader = openai.OpenAI(base_url=f"{server.url}/v1", api_key=FINANCE_READER)
    question = [LEDGER]
    first = writer.chat.completions.create(model="finance", messages=question)
    session = first.model_extra["session_id"]
    again = writer.chat.completions.create(
        model="finance", messages=question, extra_body={"session_id": session}
    )
    assert again.model_extra["session_id"] == session
    with pytest.raises(openai.NotFoundError):
        reader.chat.completions.create(model="finance", messages=question, extra_body={"session_id": session})
    with httpx.Client(base_url=server.url, timeout=60) as http:
        path = f"/v1/collections/finance/sessions/{session}"
        assert http.get(path, headers=bearer(FINANCE_READER)).status_code == 404
        assert http.delete(path, headers=bearer(FINANCE_READER)).status_code == 404
        turns = http.get(path, headers=bearer(FINANCE_WRITER)).json()["turns"]
        assert [t["role"] for t in turns] == ["user", "assistant"] * 2


@pytest.mark.slow
def test_schema_fuzz_finds_no_server_error(tmp_path: Path, embedder) -> None:
    # its own server and index: the fuzz deletes, uploads and re-indexes at random
    settings = Settings(index=tmp_path / "index", sessions=tmp_path / "s.sqlite", api_keys=ADMIN)
    app = create_app(settings, QuickGenerator(), embedder)
    server = Server(app)
    try:
        with httpx.Client(base_url=server.url, headers=bearer(ADMIN), timeout=300) as http:
            pdf = make_pdf(tmp_path / "a.pdf", ["Acme revenue was 4.2 billion dollars. " + lorem("x", 20)])
            http.post("/v1/documents", files=[("files", ("a.pdf", pdf.read_bytes(), "application/pdf"))],
                      params={"wait": True})
        sent, server_errors = fuzz(app.openapi(), server.url, ADMIN, examples=15)
    finally:
        server.stop()
    assert sent >= 15 * 2 * 10 and server_errors == []


@pytest.mark.slow
def test_eight_clients_query_through_a_whole_reindex_and_a_soak(service) -> None:
    server, settings = service
    uploads = server.server.config.app.state.rag.default().uploads
    for i in range(6):
        make_pdf(uploads / f"minutes_{i}.pdf", [lorem(f"meeting{i}", 60), lorem(f"agenda{i}", 60)])
    with httpx.Client(base_url=server.url, headers=bearer(ADMIN), timeout=60) as http:
        start = lambda: http.post("/v1/reindex").json()  # noqa: E731
        run = queries_during_job(server.url, ADMIN, 8, start, "/v1/jobs/{id}")
    assert run["job"]["status"] == "done" and run["failures"] == [] and run["during"] > 0, run["job"]
    # the first soak lifts memory to its high-water mark for 16 concurrent requests (each embeds
    # its sources' sentences to quote one: +420 MB with the torch embedder, then +11 and +11 MB
    # over two more soaks); a leak grows on every soak, so the second is measured
    warm = soak(server.url, ADMIN, clients=16, seconds=5)
    assert warm["errors"] == []
    before = rss_mb()
    result = soak(server.url, ADMIN, clients=16, seconds=10)
    growth = rss_mb() - before
    print(f"soak: {result['requests']} requests, p99 {result['p99_s']:.3f} s, RSS growth {growth:.0f} MB")
    assert result["requests"] > 100 and result["errors"] == []
    assert growth < 300


def test_a_long_upload_name_is_cut_not_a_500(service, tmp_path: Path) -> None:
    server, _ = service
    pdf = make_pdf(tmp_path / "long.pdf", ["Otters hold hands while they sleep. " + lorem("zoo", 5)])
    name = "n" * 252 + ".pdf"  # 256 characters: with a temporary suffix, over the 255-byte file name limit
    with httpx.Client(base_url=server.url, headers=bearer(ADMIN), timeout=120) as http:
        response = http.post("/v1/collections/scratch/documents", params={"wait": True},
                             files=[("files", (name, pdf.read_bytes(), "application/pdf"))])
        assert response.status_code == 202, response.text
        saved = response.json()["documents"][0]
        assert saved.endswith(".pdf") and len(saved) < 255
        assert [d["id"] for d in http.get("/v1/collections/scratch/documents").json()["data"]] == [saved]
