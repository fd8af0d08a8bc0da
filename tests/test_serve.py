"""The HTTP service on a real uvicorn server on 127.0.0.1, driven by the official openai client and
plain HTTP, with the real MiniLM and SmolLM2 behind it."""

from __future__ import annotations

import base64
import json
import threading
import time
from pathlib import Path

import httpx
import numpy as np
import openai
import pytest
from conftest import covers, make_reports
from live_server import Server
from pdfs import lorem, make_pdf

from rag.conversation import SessionStore
from rag.settings import Settings
from serve.app import create_app
from serve.uploads import safe_filename

KEY = "test-key-123"


@pytest.fixture(scope="module")
def service(tmp_path_factory, embedder, generator):
    root = tmp_path_factory.mktemp("serve")
    settings = Settings(index=root / "index", sessions=root / "sessions.sqlite", api_keys=KEY)
    server = Server(create_app(settings, generator, embedder))
    http = httpx.Client(base_url=server.url, headers={"Authorization": f"Bearer {KEY}"}, timeout=300)
    pdfs = make_reports(root / "pdfs")
    yield server, http, pdfs
    http.close()
    server.stop()


def upload(http: httpx.Client, *paths: Path, wait: bool = True) -> httpx.Response:
    files = [("files", (p.name, p.read_bytes(), "application/pdf")) for p in paths]
    return http.post("/v1/documents", files=files, params={"wait": wait})


def client(server: Server) -> openai.OpenAI:
    return openai.OpenAI(base_url=f"{server.url}/v1", api_key=KEY, timeout=300)


@pytest.fixture(scope="module")
def loaded(service):
    server, http, pdfs = service
    response = upload(http, pdfs / "acme_2021.pdf", pdfs / "acme_2022.pdf")
    assert response.status_code == 202, response.text
    assert response.json()["job"]["status"] == "done", response.json()
    return service


def test_health_needs_no_key_and_the_rest_does(service) -> None:
    server, _, _ = service
    assert httpx.get(f"{server.url}/health").json()["status"] == "ok"
    for method, path in [
        ("GET", "/v1/models"),
        ("GET", "/v1/documents"),
        ("POST", "/v1/search"),
        ("POST", "/v1/chat/completions"),
        ("GET", "/metrics"),
    ]:
        response = httpx.request(method, f"{server.url}{path}", headers={"Authorization": "Bearer wrong"})
        assert response.status_code == 401, (path, response.text)
        assert "API key" in response.json()["error"]["message"]
    with pytest.raises(openai.AuthenticationError):
        openai.OpenAI(base_url=f"{server.url}/v1", api_key="wrong").models.list()


def test_upload_lists_documents(loaded) -> None:
    _, http, _ = loaded
    names = {d["id"]: d for d in http.get("/v1/documents").json()["data"]}
    assert set(names) == {"acme_2021.pdf", "acme_2022.pdf"}
    assert names["acme_2021.pdf"]["pages"] == 3


def test_chat_completion_cites_document_and_page(loaded) -> None:
    server, _, _ = loaded
    reply = client(server).chat.completions.create(
        model="ragstack",
        messages=[{"role": "user", "content": "What was Acme's revenue in 2021?"}],
        max_tokens=80,
        # within the 2021 report: the page of the citation is checked, not the 135M model's pick
        # between two near-identical revenue sentences of two years
        extra_body={"docs": ["acme_2021.pdf"]},
    )
    text = reply.choices[0].message.content
    assert {s["doc"] for s in reply.model_extra["sources"]} == {"acme_2021.pdf"}
    citations = reply.model_extra["citations"]
    assert any(covers(c, "acme_2021.pdf", 2) for c in citations), (text, citations)
    assert "Sources:" in text and "acme_2021.pdf p" in text and reply.choices[0].finish_reason == "stop"
    # the default style (auto) answers a short question a source sentence states in its words
    assert all(c["extracted"] for c in citations) and "4.2 billion" in text, (text, citations)
    # the claim check's verdict per sentence, quoted or generated; under the default policy (extract) no
    # unsupported one is shown, and each citation carries the verdict of the sentences shown
    claims = reply.model_extra["claims"]
    assert claims and all(set(c) == {"sentence", "supported", "unsupported", "cites"} for c in claims)
    shown = [c for c in claims if c["sentence"] in text.split("\n\nSources:")[0]]
    assert all(c["supported"] for c in shown), (text, claims)
    for citation in citations:
        flagged = [s for c in shown if citation["n"] in c["cites"] for s in c["unsupported"]]
        assert citation["supported"] == (not flagged)
        assert citation["unsupported"] == list(dict.fromkeys(flagged))


def test_streaming_with_the_openai_client(loaded) -> None:
    server, _, _ = loaded
    stream = client(server).chat.completions.create(
        model="ragstack",
        stream=True,
        max_tokens=60,
        messages=[{"role": "user", "content": "What was Acme's capital expenditure in 2021?"}],
        # as above: the stream's plumbing and its citations are checked, not the 135M model's
        # pick between the two reports
        extra_body={"docs": ["acme_2021.pdf"]},
    )
    chunks = list(stream)
    text = "".join(c.choices[0].delta.content or "" for c in chunks)
    assert len(chunks) > 3 and text.strip()
    assert chunks[-1].choices[0].finish_reason == "stop"
    citations = chunks[-1].model_extra["citations"]
    assert any(covers(c, "acme_2021.pdf", 3) for c in citations), (text, citations)
    # the answer as checked comes on the last chunk, for a client to show once the stream ends
    checked = chunks[-1].model_extra["text"]
    assert checked.strip() and f"[{citations[0]['n']}]" in checked


def test_follow_up_in_a_session(loaded) -> None:
    server, http, _ = loaded
    chat = client(server)
    first = chat.chat.completions.create(
        model="ragstack",
        messages=[{"role": "user", "content": "What was Acme's revenue in 2021?"}],
        max_tokens=60,
    )
    session_id = first.model_extra["session_id"]  # the server names every conversation
    assert session_id and SessionStore.valid_id(session_id)
    second = chat.chat.completions.create(
        model="ragstack",
        messages=[{"role": "user", "content": "And in 2022?"}],
        max_tokens=60,
        extra_body={"session_id": session_id},
    )
    assert second.model_extra["session_id"] == session_id
    assert "2022" in second.model_extra["query"] and "revenue" in second.model_extra["query"].lower()
    # the rewritten follow-up finds the 2022 report (whether a 135M model then cites it is luck)
    assert second.model_extra["sources"][0]["doc"] == "acme_2022.pdf", second.model_extra
    turns = http.get(f"/v1/sessions/{session_id}").json()["turns"]
    assert [t["role"] for t in turns] == ["user", "assistant", "user", "assistant"]
    # an id the server did not make is not a session: clients cannot pick (or guess) one
    with pytest.raises(openai.NotFoundError):
        chat.chat.completions.create(
            model="ragstack", messages=[{"role": "user", "content": "Hi?"}], extra_body={"session_id": "mine"}
        )
    assert http.delete(f"/v1/sessions/{session_id}").json()["deleted"]
    assert http.get(f"/v1/sessions/{session_id}").status_code == 404


def test_models_embeddings_search_and_metrics(loaded, embedder) -> None:
    server, http, _ = loaded
    chat = client(server)
    assert "SmolLM2-135M-Instruct" in [m.id for m in chat.models.list().data]
    vectors = chat.embeddings.create(model="all-MiniLM-L6-v2", input=["revenue in 2021", "zebras"]).data
    assert len(vectors) == 2 and len(vectors[0].embedding) == 384
    expected = embedder.encode(["revenue in 2021"])[0]
    assert abs(sum(a * b for a, b in zip(vectors[0].embedding, expected, strict=True)) - 1) < 1e-4
    hits = http.post("/v1/search", json={"query": "capital expenditure 2021", "k": 2}).json()["results"]
    assert covers(hits[0], "acme_2021.pdf", 3)
    metrics = http.get("/metrics").text
    assert 'ragstack_requests_total{method="POST",route="/v1/search",status="200"}' in metrics
    assert 'ragstack_request_seconds_bucket{le="0.5",route="/v1/search"}' in metrics
    assert "ragstack_generated_tokens_total" in metrics


def test_embeddings_in_base64_as_openai_encodes_them(loaded) -> None:
    server, _, _ = loaded
    asked: list[dict] = []
    record = {"request": [lambda r: asked.append(json.loads(r.read()))]}
    recorder = httpx.Client(event_hooks=record, timeout=300)
    chat = openai.OpenAI(base_url=f"{server.url}/v1", api_key=KEY, http_client=recorder, timeout=300)
    texts = ["revenue in 2021", "zebras"]
    floats = chat.embeddings.create(model="all-MiniLM-L6-v2", input=texts, encoding_format="float").data
    # asked for explicitly, base64 comes back as sent: little-endian float32 bytes
    encoded = chat.embeddings.create(model="all-MiniLM-L6-v2", input=texts, encoding_format="base64").data
    # asked for nothing, the client requests base64 and decodes it itself
    default = chat.embeddings.create(model="all-MiniLM-L6-v2", input=texts).data
    assert [a.get("encoding_format") for a in asked] == ["float", "base64", "base64"]
    for f, e, d in zip(floats, encoded, default, strict=True):
        vector = np.array(f.embedding, dtype=np.float32)
        assert vector.shape == (384,)
        np.testing.assert_array_equal(np.frombuffer(base64.b64decode(e.embedding), dtype="<f4"), vector)
        np.testing.assert_array_equal(np.array(d.embedding, dtype=np.float32), vector)


def test_bad_requests_are_4xx_with_a_message(loaded, tmp_path: Path) -> None:
    _, http, _ = loaded
    for body in (
        {},
        {"messages": []},
        {"messages": "hi"},
        {"messages": [{"role": "user"}]},
        {"messages": [{"role": "assistant", "content": "hi"}]},
        {"messages": [{"role": "user", "content": "hi"}], "max_tokens": -1},
    ):
        response = http.post("/v1/chat/completions", json=body)
        assert response.status_code == 422, (body, response.text)
        assert response.json()["error"]["message"].startswith("invalid request")
    assert (
        http.post(
            "/v1/chat/completions", content=b"{not json", headers={"content-type": "application/json"}
        ).status_code
        == 422
    )
    assert http.post("/v1/search", json={"query": ""}).status_code == 422
    assert http.post("/v1/search", json={"query": "x", "mode": "psychic"}).status_code == 422
    assert http.get("/v1/jobs/nope").status_code == 404
    assert http.delete("/v1/documents/nope.pdf").status_code == 404
    text = tmp_path / "notes.pdf"
    text.write_text("just text, whatever the extension says")
    response = upload(http, text)
    assert response.status_code == 415 and "not a PDF" in response.json()["error"]["message"]
    assert http.post("/v1/documents").status_code == 422


def test_upload_names_cannot_escape_the_folder(loaded, tmp_path: Path) -> None:
    assert safe_filename("../../etc/evil.pdf") == "evil.pdf"
    assert safe_filename("..\\..\\win.pdf") == "win.pdf"
    assert safe_filename("a/b/<script>.pdf") == "_script_.pdf"
    server, http, _ = loaded
    pdf = make_pdf(tmp_path / "x.pdf", ["Kangaroos carry their young in a pouch. " + lorem("zoo", 5)])
    response = http.post(
        "/v1/documents",
        params={"wait": True},
        files=[("files", ("../../../outside.pdf", pdf.read_bytes(), "application/pdf"))],
    )
    assert response.status_code == 202 and response.json()["documents"] == ["outside.pdf"]
    root = Path(server.server.config.app.state.rag.default().uploads)
    assert (root / "outside.pdf").is_file() and not (root.parent.parent / "outside.pdf").exists()
    assert http.delete("/v1/documents/outside.pdf").status_code == 200
    assert not (root / "outside.pdf").exists()


def test_delete_removes_a_document_from_answers(loaded, tmp_path: Path) -> None:
    server, http, _ = loaded
    pdf = make_pdf(
        tmp_path / "koala.pdf", [lorem("zoo", 5), "Koalas sleep up to twenty hours a day in eucalyptus."]
    )
    upload(http, pdf)
    question = [{"role": "user", "content": "How long do koalas sleep?"}]
    before = client(server).chat.completions.create(model="ragstack", messages=question, max_tokens=40)
    # the answer is drawn from koala.pdf (whether a 135M model cites it is its own affair)
    assert before.model_extra["sources"][0]["doc"] == "koala.pdf", before
    assert http.delete("/v1/documents/koala.pdf").json()["deleted"]
    assert "koala.pdf" not in {d["id"] for d in http.get("/v1/documents").json()["data"]}
    after = client(server).chat.completions.create(model="ragstack", messages=question, max_tokens=40)
    assert all(s["doc"] != "koala.pdf" for s in after.model_extra["sources"] + after.model_extra["citations"])
    assert "koala.pdf" not in after.choices[0].message.content
    assert all(
        s["doc"] != "koala.pdf" for s in http.post("/v1/search", json={"query": "koalas"}).json()["results"]
    )


def test_queries_keep_working_during_a_reindex(loaded) -> None:
    server, http, _ = loaded
    # new files appear in the upload folder: re-indexing picks them up
    uploads = Path(server.server.config.app.state.rag.default().uploads)
    make_pdf(uploads / "acme_2023.pdf", ["Acme Corporation's revenue in 2023 was 6.0 billion dollars."])
    for i in range(4):
        make_pdf(uploads / f"minutes_{i}.pdf", [lorem(f"meeting{i}", 60), lorem(f"agenda{i}", 60)])
    failures, answered_at, stop = [], [], threading.Event()

    def keep_querying() -> None:
        with httpx.Client(base_url=server.url, headers={"Authorization": f"Bearer {KEY}"}, timeout=60) as own:
            while not stop.is_set():
                response = own.post("/v1/search", json={"query": "Acme revenue", "k": 3})
                if response.status_code != 200 or not response.json()["results"]:
                    failures.append(response.text)
                else:
                    answered_at.append(time.time())

    reader = threading.Thread(target=keep_querying)
    reader.start()
    try:
        time.sleep(0.5)
        job = http.post("/v1/reindex").json()
        deadline = time.monotonic() + 300
        while job["status"] in ("queued", "running"):
            assert time.monotonic() < deadline
            time.sleep(0.2)
            job = http.get(f"/v1/jobs/{job['id']}").json()
        time.sleep(0.5)
    finally:
        stop.set()
        reader.join()
    assert job["status"] == "done", job
    assert job["files_total"] == 5 and job["files_done"] == 5, job
    assert failures == []
    during = [t for t in answered_at if job["started"] <= t <= job["finished"]]
    assert during, "no query was answered while the re-index ran"
    assert any(t > job["finished"] for t in answered_at)
    docs = {d["id"] for d in http.get("/v1/documents").json()["data"]}
    assert {"acme_2023.pdf", "minutes_0.pdf"} <= docs
    hits = http.post("/v1/search", json={"query": "revenue in 2023", "k": 1}).json()["results"]
    assert hits[0]["doc"] == "acme_2023.pdf"


def test_without_keys_no_auth_and_the_upload_size_limit(tmp_path: Path) -> None:
    settings = Settings(index=tmp_path / "index", sessions=tmp_path / "s.sqlite", max_upload_mb=1)
    server = Server(create_app(settings))  # no models load: nothing here needs them
    try:
        assert httpx.get(f"{server.url}/v1/documents").json() == {"object": "list", "data": []}
        big = b"%PDF-1.4\n" + b"0" * (1024 * 1024 + 10)
        response = httpx.post(
            f"{server.url}/v1/documents", files=[("files", ("big.pdf", big, "application/pdf"))]
        )
        assert response.status_code == 413 and "1 MB" in response.json()["error"]["message"]
        assert not (settings.index.parent / "index-documents" / "big.pdf").exists()
        # asking before anything is indexed is a clear 409, not a 500
        response = httpx.post(f"{server.url}/v1/search", json={"query": "anything"})
        assert response.status_code == 409 and "upload documents first" in response.json()["error"]["message"]
    finally:
        server.stop()
