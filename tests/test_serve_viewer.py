"""What a viewer needs from the service, on a real uvicorn server with a real index of real PDFs
(the real MiniLM): an indexed PDF, its pages as PNGs, a cited chunk's place on its page, this
key's sessions, the collections it may read, and the eval runs beside the index.

The generator is `QuickGenerator`, a tiny fake that answers at once: only the one chat request
below uses it, to check that a conversation lands in the session list (plumbing, not answers).
"""

from __future__ import annotations

import io
import os
import time
from pathlib import Path

import httpx
import pytest
from live_server import Server
from pdfs import make_pdf
from PIL import Image
from service_probes import QuickGenerator, bearer

from eval.report import write_report, write_results
from rag.collections import in_collection
from rag.ingest import ingest
from rag.settings import Settings
from serve.app import create_app

ADMIN, PEER, READER = "sk-viewer-admin-0123", "sk-viewer-peer-01234", "sk-viewer-read-01234"
KEYS = f"""
[[keys]]
key = "{ADMIN}"
name = "admin"
collections = ["*"]
write = true

[[keys]]
key = "{PEER}"
name = "peer"
collections = ["*"]

[[keys]]
key = "{READER}"
name = "finance-reader"
collections = ["finance"]
"""
# three pages of plain prose, each longer than a 48-token chunk: some chunk runs from one page on
# to the next
ATLAS = [
    "Harbour cranes unload containers from the night ships before the fish market opens at dawn. "
    "Pilots guide each vessel through the narrow channel past the old lighthouse and the breakwater. "
    "Dock workers stack the steel boxes six high on the quay while lorries queue at the gate. "
    "Customs officers open one container in fifty and weigh the rest on the scales by the warehouse.",
    "Glaciers in the northern valley retreat about thirty metres every summer as the ice thins. "
    "Researchers drill cores through the ice to read the air bubbles trapped centuries ago. "
    "Meltwater feeds a turquoise lake that did not exist when the first maps were drawn. "
    "Mountain guides now lead walkers over bare rock where the ice field reached fifty years ago.",
    "Orchards on the southern slopes grow apricots, cherries and a late variety of pear. "
    "Farmers net the trees in spring so that the frost and the starlings spare the blossom. "
    "The cooperative presses the windfall fruit into juice and ships it to the coastal towns. "
    "Beekeepers bring their hives to the orchards for three weeks while the trees are in flower.",
]
UNRELATED = "Quantum chromodynamics describes how gluons bind quarks inside protons and neutrons."


@pytest.fixture(scope="module")
def viewer(tmp_path_factory, embedder):
    root = tmp_path_factory.mktemp("viewer")
    (root / "keys.toml").write_text(KEYS)
    settings = Settings(
        index=root / "index",
        sessions=root / "sessions.sqlite",
        keys_file=root / "keys.toml",
        runs_dir=root / "runs",
        chunk_size=48,
        chunk_overlap=8,
    )
    pdfs = root / "pdfs"
    pdfs.mkdir()
    make_pdf(pdfs / "atlas.pdf", ATLAS)
    make_pdf(pdfs / "spare.pdf", ["A spare document whose file the tests change. " + ATLAS[2]])
    ingest([pdfs], settings, progress=False, embedder=embedder)
    ledger = make_pdf(root / "ledger.pdf", ["The finance ledger shows revenue of 9.9 million dollars."])
    ingest([ledger], in_collection(settings, "finance"), progress=False, embedder=embedder)
    make_runs(root / "runs")
    server = Server(create_app(settings, QuickGenerator(), embedder))
    http = httpx.Client(base_url=server.url, headers=bearer(ADMIN), timeout=120)
    yield server, http, root
    http.close()
    server.stop()


def make_runs(runs: Path) -> None:
    """run-a: results.json only; run-b: what write_report writes (report.md, PNG plots); run-c: a
    hand-written report with raw HTML, a file not served and a link out; notes: not a run."""
    for name, ndcg in (("run-a", 0.52), ("run-b", 0.61)):
        results = {
            "figures": {"hybrid": {"ndcg@10": ndcg, "recall@10": 0.8, "recall@100": 0.95}},
            "per_query": {"hybrid": {"q1": {"ndcg@10": ndcg}, "q2": {"ndcg@10": 0.7}}},
            "settings": {"mode": "hybrid"},
        }
        (runs / name).mkdir(parents=True)
        write_results(runs / name, results)
        if name == "run-b":
            write_report(runs / name, results, "run b")
    (runs / "run-c").mkdir()
    (runs / "run-c" / "report.md").write_text("# run c\n\n<script>alert(1)</script>\n\n![plot](plot.png)\n")
    Image.new("RGB", (4, 4), "red").save(runs / "run-c" / "plot.png")
    (runs / "run-c" / "secret.txt").write_text("not served")
    (runs.parent / "outside.png").write_bytes(b"outside the runs")
    (runs / "run-c" / "link.png").symlink_to(runs.parent / "outside.png")
    (runs / "notes").mkdir()
    for age, name in enumerate(("run-c", "run-b", "run-a")):  # run-a the latest changed
        for path in [runs / name, *(runs / name).iterdir()]:
            os.utime(path, (time.time() - 3600 + age * 60,) * 2, follow_symlinks=False)


def search(http: httpx.Client, query: str) -> list[dict]:
    response = http.post("/v1/search", json={"query": query, "k": 50, "docs": ["atlas.pdf"]})
    assert response.status_code == 200, response.text
    return response.json()["results"]


def highlight(http: httpx.Client, page: int, text: str, doc: str = "atlas.pdf") -> dict:
    response = http.post(f"/v1/documents/{doc}/pages/{page}/highlights", json={"text": text})
    assert response.status_code == 200, response.text
    return response.json()


def test_the_page_needs_no_key_and_data_does(viewer) -> None:
    server, _, _ = viewer
    for path in ("/", "/ui/x", "/ui/app.js", "/health"):
        assert httpx.get(f"{server.url}{path}").status_code != 401, path
    for path in (
        "/v1/collections",
        "/v1/sessions",
        "/v1/runs",
        "/v1/runs/run-b",
        "/v1/runs/run-b/files/report.md",
        "/v1/documents/atlas.pdf/file",
        "/v1/documents/atlas.pdf/pages/1.png",
        "/v1/collections/finance/documents/ledger.pdf/file",
        "/ui",
    ):
        assert httpx.get(f"{server.url}{path}").status_code == 401, path
    response = httpx.post(f"{server.url}/v1/documents/atlas.pdf/pages/1/highlights", json={"text": "x"})
    assert response.status_code == 401


def test_the_page_is_served_unless_turned_off(viewer, tmp_path) -> None:
    server, _, _ = viewer
    page = httpx.get(f"{server.url}/")
    assert page.status_code == 200 and '<script type="module" src="/ui/app.js">' in page.text
    assert "default-src 'self'" in page.headers["content-security-policy"]
    script = httpx.get(f"{server.url}/ui/app.js")
    assert script.status_code == 200 and "javascript" in script.headers["content-type"]
    # `rag serve --no-ui`: the API alone
    from starlette.testclient import TestClient

    with TestClient(create_app(Settings(index=tmp_path / "index", ui=False))) as bare:
        assert bare.get("/").status_code == 404 and bare.get("/ui/app.js").status_code == 404
        assert bare.get("/health").status_code == 200


def test_the_indexed_file_byte_for_byte(viewer) -> None:
    _, http, root = viewer
    response = http.get("/v1/documents/atlas.pdf/file")
    assert response.status_code == 200
    assert response.content == (root / "pdfs" / "atlas.pdf").read_bytes()
    assert response.headers["content-type"] == "application/pdf"
    assert (
        response.headers["content-disposition"].startswith("inline")
        and "atlas.pdf" in response.headers["content-disposition"]
    )
    for path in ("/v1/documents/nope.pdf/file", "/v1/documents/..%2Fpdfs%2Fatlas.pdf/file"):
        assert http.get(path).status_code == 404, path
    # the same route in a collection, under its key's grant
    reader = httpx.Client(base_url=http.base_url, headers=bearer(READER), timeout=60)
    ledger = reader.get("/v1/collections/finance/documents/ledger.pdf/file")
    assert ledger.status_code == 200 and ledger.content == (root / "ledger.pdf").read_bytes()
    assert reader.get("/v1/documents/atlas.pdf/file").status_code == 403
    assert reader.get("/v1/documents/atlas.pdf/pages/1.png").status_code == 403
    assert reader.post("/v1/documents/atlas.pdf/pages/1/highlights", json={"text": "x"}).status_code == 403
    reader.close()


def test_a_page_as_png_at_the_width_asked(viewer) -> None:
    _, http, _ = viewer
    response = http.get("/v1/documents/atlas.pdf/pages/2.png", params={"width": 640})
    assert response.status_code == 200 and response.headers["content-type"] == "image/png"
    assert response.headers["x-page-count"] == "3"
    image = Image.open(io.BytesIO(response.content))
    assert image.size == (640, round(640 * 841.89 / 595.28))  # A4, as fpdf2 makes it
    assert image.convert("L").getextrema()[0] < 100  # text was drawn, not a blank page
    default = Image.open(io.BytesIO(http.get("/v1/documents/atlas.pdf/pages/1.png").content))
    assert default.width == 900
    for page, width, status in [(0, 900, 404), (4, 900, 404), (1, 99, 422), (1, 2001, 422)]:
        response = http.get(f"/v1/documents/atlas.pdf/pages/{page}.png", params={"width": width})
        assert response.status_code == status, (page, width, response.text)
    assert http.get("/v1/documents/atlas.pdf/pages/x.png").status_code == 422
    assert http.get("/v1/documents/nope.pdf/pages/1.png").status_code == 404


def test_a_chunk_is_highlighted_where_it_lies(viewer) -> None:
    _, http, _ = viewer
    results = search(http, "harbour cranes unload containers night ships")
    first = next(
        r for r in results if r["page_start"] == r["page_end"] == 1 and r["text"].startswith("Harbour")
    )
    marks = highlight(http, 1, first["text"])
    assert marks["found"] and marks["page"] == 1 and marks["pages"] == 3
    assert (marks["width"], marks["height"]) == (595.28, 841.89)
    rects = marks["rects"]
    assert rects and all(0 <= r[k] <= 1 for r in rects for k in "xywh")
    assert all(r["x"] + r["w"] <= 1 and r["y"] + r["h"] <= 1 for r in rects)
    # the page's first lines: fpdf2 writes from 10 mm (about 0.035 of the page's height) down
    assert rects[0]["y"] < 0.05 and rects[-1]["y"] < 0.2 and rects[0]["x"] < 0.1
    # text further down the page is marked further down
    lower = highlight(http, 1, ATLAS[0].split(". ")[-1])["rects"]
    assert lower and lower[0]["y"] > rects[0]["y"] + 0.03
    # on another page it is not there
    elsewhere = highlight(http, 3, first["text"])
    assert elsewhere["page"] == 3 and not elsewhere["found"] and elsewhere["rects"] == []


def test_a_chunk_that_runs_onto_the_next_page_is_marked_on_both(viewer) -> None:
    _, http, _ = viewer
    spanning = [
        r
        for r in search(http, "customs officers container glaciers valley")
        if r["page_end"] > r["page_start"]
    ]
    assert spanning, "no chunk runs from one page to the next: the pages are too short for the chunk size"
    chunk = spanning[0]
    first, last = chunk["page_start"], chunk["page_end"]
    assert last == first + 1 and " ".join(ATLAS[first - 1].split()[-3:]) in chunk["text"]
    start, end = highlight(http, first, chunk["text"]), highlight(http, last, chunk["text"])
    assert start["found"] and end["found"]
    # each page says which part of the chunk it holds: the chunk's head on the first, its tail on the next
    squash = " ".join
    assert squash(start["text"].split()) in squash(chunk["text"].split())
    assert squash(end["text"].split())[:40] in squash(chunk["text"].split())
    words = chunk["text"].split()
    assert words[0] in start["text"] and words[-1].strip(".") in end["text"]
    # on its first page it runs from below the page's first line to the end of its last one
    top_line = highlight(http, first, ATLAS[first - 1].split(".")[0])["rects"][0]
    bottom_line = highlight(http, first, ATLAS[first - 1].split(". ")[-1])["rects"][-1]
    assert start["rects"][0]["y"] > top_line["y"]
    assert start["rects"][-1]["y"] == pytest.approx(bottom_line["y"], abs=0.002)
    assert start["rects"][-1]["x"] + start["rects"][-1]["w"] == pytest.approx(
        bottom_line["x"] + bottom_line["w"], abs=0.002
    )
    # on the next page it starts at the page's first character and stops before its last line
    next_top = highlight(http, last, ATLAS[last - 1].split(".")[0])["rects"][0]
    next_bottom = highlight(http, last, ATLAS[last - 1].split(". ")[-1])["rects"][-1]
    assert end["rects"][0]["y"] == pytest.approx(next_top["y"], abs=0.002)
    assert end["rects"][0]["x"] == pytest.approx(next_top["x"], abs=0.002)
    assert end["rects"][-1]["y"] < next_bottom["y"]


def test_text_not_on_the_page_is_not_found(viewer) -> None:
    _, http, _ = viewer
    for text in (UNRELATED, UNRELATED * 20, "...", "\u2014 \u2014"):
        marks = highlight(http, 1, text)
        assert marks["found"] is False and marks["rects"] == [], text[:40]
    too_long = http.post("/v1/documents/atlas.pdf/pages/1/highlights", json={"text": "x" * 32_001})
    assert too_long.status_code == 422
    assert http.post("/v1/documents/atlas.pdf/pages/1/highlights", json={"text": ""}).status_code == 422
    assert http.post("/v1/documents/atlas.pdf/pages/9/highlights", json={"text": "x"}).status_code == 404


def test_a_file_changed_or_gone_since_indexing_is_410(viewer) -> None:
    _, http, root = viewer
    spare = root / "pdfs" / "spare.pdf"
    assert http.get("/v1/documents/spare.pdf/file").status_code == 200
    original = spare.read_bytes()
    make_pdf(spare, ["Another text altogether, with another size."])
    assert len(spare.read_bytes()) != len(original)
    for response in (
        http.get("/v1/documents/spare.pdf/file"),
        http.get("/v1/documents/spare.pdf/pages/1.png"),
        http.post("/v1/documents/spare.pdf/pages/1/highlights", json={"text": "spare"}),
    ):
        assert response.status_code == 410 and "re-index" in response.json()["error"]["message"]
    spare.unlink()
    response = http.get("/v1/documents/spare.pdf/file")
    assert response.status_code == 410 and str(root) not in response.text
    assert http.get("/v1/documents/spare.pdf/pages/1.png").status_code == 410


def test_sessions_list_this_keys_own_newest_first(viewer) -> None:
    server, http, _ = viewer
    peer = httpx.Client(base_url=server.url, headers=bearer(PEER), timeout=60)
    store = server.server.config.app.state.rag.default().sessions()
    older = http.post("/v1/sessions").json()["id"]
    empty = http.post("/v1/sessions").json()["id"]
    theirs = peer.post("/v1/sessions").json()["id"]
    question = "Where do the harbour cranes unload the containers, and who guides the ships? " * 2
    store.append(older, "user", question)
    store.append(older, "assistant", "At the quay [1].")
    time.sleep(0.02)
    store.append(theirs, "user", "Glaciers?")
    # a chat turn through the API lands in the same store
    chat = http.post(
        "/v1/chat/completions", json={"messages": [{"role": "user", "content": "What do the orchards grow?"}]}
    )
    assert chat.status_code == 200, chat.text
    latest = chat.json()["session_id"]
    mine = http.get("/v1/sessions").json()
    assert mine["object"] == "list"
    assert [s["id"] for s in mine["data"]] == [latest, older, empty]
    by_id = {s["id"]: s for s in mine["data"]}
    assert by_id[latest]["title"] == "What do the orchards grow?" and by_id[latest]["turns"] == 2
    assert by_id[older]["title"] == question[:80] and by_id[older]["turns"] == 2
    assert (by_id[empty]["title"], by_id[empty]["turns"]) == ("", 0)
    assert by_id[empty]["updated"] == by_id[empty]["created"] < by_id[older]["updated"]
    assert set(by_id[older]) == {"id", "created", "updated", "title", "turns"}
    assert [s["id"] for s in peer.get("/v1/sessions").json()["data"]] == [theirs]
    assert [s["id"] for s in peer.get("/v1/collections/default/sessions").json()["data"]] == [theirs]
    # the list does not hide a session's own route
    assert http.get(f"/v1/sessions/{older}").json()["turns"][0]["content"] == question
    assert peer.get(f"/v1/sessions/{older}").status_code == 404
    # another collection's sessions are another list
    assert http.get("/v1/collections/finance/sessions").json()["data"] == []
    peer.close()


def test_collections_a_key_may_read(viewer) -> None:
    server, http, _ = viewer
    admin = http.get("/v1/collections").json()
    assert admin == {
        "object": "list",
        "data": [{"name": "default", "documents": 2}, {"name": "finance", "documents": 1}],
        "write": True,
    }
    reader = httpx.get(f"{server.url}/v1/collections", headers=bearer(READER)).json()
    assert reader == {"object": "list", "data": [{"name": "finance", "documents": 1}], "write": False}


def test_eval_runs_listed_and_shown(viewer) -> None:
    server, http, root = viewer
    runs = http.get("/v1/runs").json()
    assert runs["object"] == "list"
    assert [(r["name"], r["report"], r["results"]) for r in runs["data"]] == [
        ("run-a", False, True),
        ("run-b", True, True),
        ("run-c", True, False),
    ]
    assert all(isinstance(r["modified"], float) for r in runs["data"])
    # any valid key may read them, whatever collections it holds
    assert httpx.get(f"{server.url}/v1/runs", headers=bearer(READER)).json() == runs

    b = http.get("/v1/runs/run-b").json()
    assert b["name"] == "run-b" and "<table>" in b["html"] and "0.6100" in b["html"]
    assert '<img src="/v1/runs/run-b/files/curves.png"' in b["html"]
    assert {"report.md", "results.json", "curves.png"} <= set(b["files"])
    plot = http.get("/v1/runs/run-b/files/curves.png")
    assert plot.status_code == 200 and plot.headers["content-type"] == "image/png"
    assert plot.content == (root / "runs" / "run-b" / "curves.png").read_bytes()
    assert http.get("/v1/runs/run-b/files/results.json").json()["figures"]["hybrid"]["ndcg@10"] == 0.61

    a = http.get("/v1/runs/run-a").json()  # no report.md: its figures as a table
    assert "<table>" in a["html"] and "0.5200" in a["html"] and a["files"] == ["results.json"]

    c = http.get("/v1/runs/run-c").json()  # raw HTML in a report is shown, not run
    assert "<script>" not in c["html"] and "&lt;script&gt;" in c["html"]
    assert '<img src="/v1/runs/run-c/files/plot.png"' in c["html"]
    assert c["files"] == ["plot.png", "report.md"]


def test_run_names_and_files_outside_the_listing_are_404(viewer) -> None:
    _, http, root = viewer
    for path in (
        "/v1/runs/nope",
        "/v1/runs/notes",
        "/v1/runs/..",
        "/v1/runs/%2E%2E",
        "/v1/runs/..%2Fviewer",
        "/v1/runs/%2Ftmp",
        "/v1/runs/run-c/files/secret.txt",
        "/v1/runs/run-c/files/link.png",
        "/v1/runs/run-b/files/..%2F..%2Fkeys.toml",
        "/v1/runs/run-b/files/..%2Frun-c%2Freport.md",
        "/v1/runs/run-b/files/%2Fetc%2Fpasswd",
        f"/v1/runs/run-b/files/{root}/keys.toml",
        "/v1/runs/%2E%2E/files/keys.toml",
        "/v1/runs/run-b/files/nope.png",
        "/v1/runs/run-b/files/.",
    ):
        response = http.get(path)
        assert response.status_code == 404, (path, response.status_code)
        assert "not served" not in response.text and "outside the runs" not in response.text


def test_two_runs_compared_without_writing_into_them(viewer) -> None:
    server, http, root = viewer
    before = sorted(str(p.relative_to(root)) for p in (root / "runs").rglob("*"))
    result = http.get("/v1/runs/compare", params={"a": "run-a", "b": "run-b"}).json()
    assert (result["a"], result["b"]) == ("run-a", "run-b") and "<table>" in result["html"]
    ndcg = next(r for r in result["rows"] if r["metric"] == "ndcg@10")
    assert ndcg["row"] == "hybrid" and ndcg["a"] == 0.52 and ndcg["b"] == 0.61
    assert ndcg["delta"] == pytest.approx(0.09)
    assert sorted(str(p.relative_to(root)) for p in (root / "runs").rglob("*")) == before
    for params, status in [
        ({"a": "run-a", "b": "nope"}, 404),
        ({"a": "..", "b": "run-b"}, 404),
        ({"a": "run-a", "b": "run-c"}, 422),  # a report but no results.json
        ({"a": "run-a"}, 422),
    ]:
        assert http.get("/v1/runs/compare", params=params).status_code == status, params
    # no runs folder: no runs
    empty = Settings(index=root / "index", runs_dir=root / "missing", api_keys=ADMIN)
    other = Server(create_app(empty, QuickGenerator()))
    try:
        assert httpx.get(f"{other.url}/v1/runs", headers=bearer(ADMIN)).json() == {
            "object": "list",
            "data": [],
        }
    finally:
        other.stop()
