"""The web page, in a real browser: Debian's Chromium driven by Playwright, against a real
`rag serve` process on 127.0.0.1 with keys on, the real MiniLM, the bundled SmolLM2 generator and
real PDFs uploaded through the page.

One server and one browser for the module; the tests run in order, each going on from where the
last left off (upload, ask, cite, follow up, delete, ...), as a person would use the page.
Screenshots and the Enter-to-first-token times go to build/ui/ (RAG_UI_ARTIFACTS).
"""

from __future__ import annotations

import base64
import json
import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
from conftest import free_port, make_reports
from pdfs import make_pdf

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(
        CHROMIUM is None, reason="no chromium here (.ci/run installs Debian's: apt-get install chromium)"
    ),
]
sync_api = pytest.importorskip("playwright.sync_api", reason="playwright is in the test extra")

KEY = "page-test-key"
ARTIFACTS = Path(os.environ.get("RAG_UI_ARTIFACTS", Path(__file__).resolve().parents[1] / "build" / "ui"))
# the flags a closed network needs (no sign-in, no updates, no background fetches)
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
ANSWER_S = 240_000  # ms: the first question also loads both models
STREAMING, TOKENS, STOPPED = (re.compile(rf"\b{name}\b") for name in ("streaming", "has-tokens", "stopped"))


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    root = tmp_path_factory.mktemp("ui")
    write_runs(root / "runs")
    port = free_port()
    env = {
        **os.environ,
        "RAG_API_KEYS": KEY,
        "RAG_SESSIONS": str(root / "sessions.sqlite"),
        "RAG_RUNS_DIR": str(root / "runs"),
        "RAG_MAX_TOKENS": "64",
        # the generator's tokens streaming onto the page are checked; auto would quote a source
        "RAG_ANSWER_STYLE": "generated",
    }
    process = subprocess.Popen(
        [sys.executable, "-m", "rag.cli", "serve", "--index", str(root / "index"), "--port", str(port)],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 120
    while True:
        assert process.poll() is None, process.stdout.read()
        try:
            if httpx.get(f"{url}/health").status_code == 200:
                break
        except httpx.HTTPError:
            pass
        assert time.monotonic() < deadline, "rag serve did not start"
        time.sleep(0.3)
    yield {"url": url, "root": root, "process": process}
    if process.poll() is None:
        process.terminate()
        process.wait(30)


def write_runs(folder: Path) -> None:
    """Two eval runs as `rag eval` writes them (results.json, report.md, PNG plots). Their figures
    are made up: what is tested is the page showing a report, not an evaluation."""
    from eval.report import write_report, write_results

    for name, recall in (("beir-a", 0.61), ("beir-b", 0.68)):
        run = folder / name
        run.mkdir(parents=True)
        figures = {"hybrid": {"recall@10": recall, "ndcg@10": recall - 0.1, "mrr@10": recall - 0.15}}
        results = {"figures": figures, "settings": {"chunk_size": 200 if name == "beir-a" else 256}}
        write_results(run, results)
        write_report(run, results, f"Retrieval {name}")


@pytest.fixture(scope="module")
def page(server):
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    with sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        page = browser.new_page(viewport={"width": 1400, "height": 900})
        page.set_default_timeout(60_000)
        page.on("dialog", lambda dialog: dialog.accept())  # the delete confirmation
        page.goto(server["url"] + "/")
        yield page
        browser.close()


def api(server, method: str, path: str, **kwargs) -> httpx.Response:
    headers = {"Authorization": f"Bearer {KEY}"}
    return httpx.request(method, server["url"] + path, headers=headers, timeout=60, **kwargs)


def test_the_page_asks_for_a_key_and_refuses_a_wrong_one(page) -> None:
    dialog = page.locator("#key-dialog")
    sync_api.expect(dialog).to_be_visible()
    page.fill("#key-input", "not-the-key")
    page.press("#key-input", "Enter")
    sync_api.expect(page.locator("#key-error")).to_have_text("That key was refused.")
    sync_api.expect(dialog).to_be_visible()
    page.fill("#key-input", KEY)
    page.press("#key-input", "Enter")
    sync_api.expect(dialog).to_be_hidden()
    sync_api.expect(page.locator("#collection")).to_contain_text("default")
    # the key lives in this tab's session storage only
    assert page.evaluate("sessionStorage.getItem('ragstack.key')") == KEY
    assert page.evaluate("localStorage.length") == 0


def test_uploaded_pdfs_become_searchable(page, server) -> None:
    pdfs = make_reports(server["root"] / "pdfs")
    locked = make_pdf(server["root"] / "locked.pdf", ["A secret page."], password="pw")
    page.click("nav a[data-view=documents]")
    page.set_input_files("#file-input", [str(pdfs / "acme_2021.pdf"), str(locked)])
    drop(page, pdfs / "acme_2022.pdf")  # the other by drag and drop
    for name in ("acme_2021.pdf", "acme_2022.pdf"):
        item = page.locator(f".upload[data-name='{name}']")
        sync_api.expect(item).to_have_class("upload done", timeout=120_000)
        sync_api.expect(item.locator(".status")).to_contain_text("searchable: 3 pages")
    failed = page.locator(".upload[data-name='locked.pdf']")
    sync_api.expect(failed).to_have_class("upload failed", timeout=60_000)
    sync_api.expect(failed.locator(".status")).to_contain_text("password-protected")
    rows = page.locator("#documents tbody tr")
    sync_api.expect(rows).to_have_count(2)
    sync_api.expect(page.locator("#collection")).to_contain_text("default (2)")
    pages = page.locator("#documents tbody tr[data-name='acme_2022.pdf'] td").nth(1)
    sync_api.expect(pages).to_have_text("3")
    names = [d["name"] for d in api(server, "GET", "/v1/documents").json()["data"]]
    assert sorted(names) == ["acme_2021.pdf", "acme_2022.pdf"]
    # re-indexing the upload folder finds both files unchanged (the locked one was removed)
    page.click("#reindex")
    sync_api.expect(page.locator("#reindex-status")).to_have_text(
        "re-indexed: 2 files looked at, 0 not indexed", timeout=120_000
    )


def drop(page, path: Path) -> None:
    """Drop a file on the drop zone as a person dragging it from their desktop does."""
    page.evaluate(
        """([name, data]) => {
            const bytes = Uint8Array.from(atob(data), (c) => c.charCodeAt(0));
            const transfer = new DataTransfer();
            transfer.items.add(new File([bytes], name, { type: "application/pdf" }));
            const zone = document.getElementById("dropzone");
            const init = { dataTransfer: transfer, bubbles: true, cancelable: true };
            zone.dispatchEvent(new DragEvent("dragover", init));
            zone.dispatchEvent(new DragEvent("drop", init));
        }""",
        [path.name, base64.b64encode(path.read_bytes()).decode()],
    )


def ask(page, question: str) -> sync_api.Locator:
    """Type the question and press Enter; the reply's element."""
    page.click("nav a[data-view=chat]")
    replies = page.locator(".message.assistant")
    before = replies.count()
    page.fill("#question", question)
    page.press("#question", "Enter")
    return replies.nth(before)


def answered(reply: sync_api.Locator) -> None:
    """Wait for the reply to be complete."""
    sync_api.expect(reply).to_have_class(TOKENS, timeout=ANSWER_S)
    sync_api.expect(reply).not_to_have_class(STREAMING, timeout=ANSWER_S)


def test_tokens_stream_and_a_citation_opens_its_page_highlighted(page, server) -> None:
    reply = ask(page, "What was Acme Corporation's revenue in 2022?")
    # tokens are on the page while the answer is still being generated
    sync_api.expect(reply).to_have_class("message assistant streaming has-tokens", timeout=ANSWER_S)
    answered(reply)
    assert "5.1" in reply.locator(".text").inner_text()
    first = reply.locator("a.cite").first
    sync_api.expect(first).to_be_visible()
    doc, cited_page = first.get_attribute("data-doc"), first.get_attribute("data-page")
    first.focus()
    page.keyboard.press("Enter")  # keyboard, not the mouse
    viewer = page.locator("#viewer")
    sync_api.expect(viewer).to_be_visible()
    sync_api.expect(page.locator("#highlights .highlight").first).to_be_visible()
    assert page.evaluate("document.getElementById('viewer-image').naturalWidth") == 900
    # the fact is on page 2 of acme_2022.pdf (the cited chunk may start on page 1): the viewer
    # opens the page of the passage that says what the answer says
    assert doc == "acme_2022.pdf" and int(cited_page) <= 2 <= int(first.get_attribute("data-page-end"))
    sync_api.expect(page.locator("#viewer-label")).to_have_text("acme_2022.pdf p.2 of 3")
    # the highlight sits on the page, not past its edges
    box = page.locator("#highlights .highlight").first.bounding_box()
    frame = page.locator(".page-frame img").bounding_box()
    assert frame["y"] <= box["y"] < frame["y"] + frame["height"]
    sources = page.locator("#sources li")
    assert sources.count() >= 1 and "score" in sources.first.inner_text()
    shot = ARTIFACTS / "chat-citation.png"
    page.screenshot(path=str(shot), full_page=True)
    assert not blank(shot)
    timing = page.evaluate("window.ragstackTimings[0]")
    first_token_s = (timing["firstToken"] - timing["sent"]) / 1000
    (ARTIFACTS / "first-token.json").write_text(json.dumps({"first_question_s": first_token_s}))


def test_a_follow_up_goes_on_in_the_same_conversation(page, server) -> None:
    question = "And what was it in 2021?"
    answered(ask(page, question))
    assert page.locator(".message.assistant").count() == 2
    sessions = api(server, "GET", "/v1/sessions").json()["data"]
    assert len(sessions) == 1 and sessions[0]["turns"] == 4
    assert sessions[0]["title"].startswith("What was Acme Corporation's revenue in 2022")
    turns = api(server, "GET", f"/v1/sessions/{sessions[0]['id']}").json()["turns"]
    # the follow-up was searched as a question of its own, rewritten with the history
    query = turns[-1]["extra"]["query"].lower()
    assert query != question.lower() and ("revenue" in query or "acme" in query), query
    timing = page.evaluate("window.ragstackTimings[1]")
    record = json.loads((ARTIFACTS / "first-token.json").read_text())
    record["follow_up_s"] = (timing["firstToken"] - timing["sent"]) / 1000
    (ARTIFACTS / "first-token.json").write_text(json.dumps(record))
    # the conversation is listed, and reopening it brings its turns and citations back
    page.click("#new-chat")
    sync_api.expect(page.locator(".message")).to_have_count(0)
    page.locator("#session-list .session").first.click()
    sync_api.expect(page.locator(".message")).to_have_count(4)
    sync_api.expect(page.locator(".message.assistant a.cite").first).to_be_visible()


def test_stop_ends_the_stream_and_the_server_goes_on(page, server) -> None:
    reply = ask(page, "What did the audit committee review?")
    # Stop while the reply is streaming, before its first token can end it: waiting for a token
    # first raced the end of a short answer (guessed tokens come several a step), and the click
    # met a disabled button
    sync_api.expect(reply).to_have_class(STREAMING)
    page.click("#stop")
    sync_api.expect(reply).to_have_class(STOPPED)
    sync_api.expect(reply).not_to_have_class(STREAMING)
    sync_api.expect(reply.locator(".note")).to_have_text("Stopped.")
    assert api(server, "GET", "/v1/documents").status_code == 200


def test_a_question_the_documents_do_not_answer_is_refused_in_words(page) -> None:
    reply = ask(page, "How do honey bees tell each other where the flowers are?")
    answered(reply)
    sync_api.expect(reply).to_have_class(re.compile(r"\bnot-found\b"))
    sync_api.expect(reply.locator(".note")).to_contain_text("Nothing in these documents answers that")
    assert reply.locator("a.cite").count() == 0


def test_a_deleted_document_is_gone_from_answers(page, server) -> None:
    page.click("nav a[data-view=documents]")
    page.click("#documents tbody tr[data-name='acme_2022.pdf'] button.delete")
    sync_api.expect(page.locator("#documents tbody tr")).to_have_count(1)
    page.click("nav a[data-view=chat]")
    page.click("#new-chat")
    reply = ask(page, "What was Acme Corporation's revenue in 2022?")
    answered(reply)
    assert "acme_2022.pdf" not in page.locator("#sources").inner_text()
    assert "acme_2022.pdf" not in reply.inner_text()


def test_an_eval_report_and_two_runs_side_by_side(page) -> None:
    page.click("nav a[data-view=runs]")
    sync_api.expect(page.locator("#run-list li")).to_have_count(2)
    page.click("#run-list a.run >> text=beir-b")
    report = page.locator("#report")
    sync_api.expect(report.locator("h1")).to_have_text("Retrieval beir-b")
    sync_api.expect(report.locator("table").first).to_contain_text("0.68")
    plot = report.locator("img").first
    sync_api.expect(plot).to_be_visible()
    assert plot.evaluate("image => image.naturalWidth") > 100
    shot = ARTIFACTS / "eval-report.png"
    page.screenshot(path=str(shot), full_page=True)
    assert not blank(shot)
    for check in page.locator("#run-list input[type=checkbox]").all():
        check.check()
    page.click("#compare")
    sync_api.expect(report.locator("h1")).to_contain_text("beir-a")
    # older run first, and the delta of recall@10 from it to the newer
    sync_api.expect(report.locator("table th")).to_have_text(["", "metric", "beir-a", "beir-b", "delta"])
    recall = report.locator("table tr", has_text="recall@10").locator("td").last
    sync_api.expect(recall).to_have_text("0.0700")


def test_readable_on_a_phone_width_screen(page) -> None:
    page.set_viewport_size({"width": 390, "height": 844})
    page.click("nav a[data-view=chat]")
    page.locator("#session-list .session").first.click()
    sync_api.expect(page.locator(".message").first).to_be_visible()
    wide = page.evaluate("""() => [...document.querySelectorAll('body *')]
        .filter((e) => e.getBoundingClientRect().right > 390 && e.offsetParent !== null)
        .map((e) => `${e.tagName}#${e.id}.${e.className} ${Math.round(e.getBoundingClientRect().right)}`)""")
    assert page.evaluate("document.documentElement.scrollWidth") <= 390, wide
    shot = ARTIFACTS / "phone-chat.png"
    page.screenshot(path=str(shot))
    assert not blank(shot)


def blank(path: Path) -> bool:
    """A screenshot with (almost) no variation in its pixels: nothing rendered."""
    from PIL import Image, ImageStat

    return max(ImageStat.Stat(Image.open(path).convert("L")).stddev) < 8


FIREFOX = shutil.which("firefox-esr") or shutil.which("firefox")
FIREFOX_CHECK = Path(__file__).parent / "firefox"  # smoke.mjs, run with puppeteer-core by node


def test_the_page_works_in_firefox(server) -> None:
    if FIREFOX is None:
        pytest.skip("no firefox here (.ci/run installs Debian's firefox-esr)")
    if not (FIREFOX_CHECK / "node_modules" / "puppeteer-core").is_dir():
        pytest.skip("puppeteer-core not installed: `make test` runs npm ci in tests/firefox")
    result = subprocess.run(
        [
            "node",
            "smoke.mjs",
            server["url"],
            KEY,
            "What was Acme's capital expenditure in 2021?",
            str(ARTIFACTS),
        ],
        cwd=FIREFOX_CHECK,
        capture_output=True,
        text=True,
        timeout=600,
        env={**os.environ, "RAG_FIREFOX": FIREFOX},
    )
    assert result.returncode == 0, result.stdout + result.stderr
    seen = json.loads(result.stdout.strip().splitlines()[-1])
    assert seen["collection"] == "default (1)" and seen["tokensWhileStreaming"]
    assert seen["answer"].strip() and seen["viewer"] == "acme_2021.pdf p.3 of 3"  # the page saying it
    assert seen["imageWidth"] == 900 and seen["plotWidth"] > 100
    assert not blank(ARTIFACTS / "firefox-citation.png")


def test_a_server_that_is_down_is_said_in_words(page, server) -> None:
    """Last: it stops the server."""
    page.set_viewport_size({"width": 1400, "height": 900})
    server["process"].terminate()
    server["process"].wait(30)
    reply = ask(page, "What was Acme Corporation's revenue in 2021?")
    sync_api.expect(reply).to_have_class(re.compile(r"\bfailed\b"))
    down = "The server cannot be reached. Is `rag serve` running?"
    sync_api.expect(reply.locator(".note")).to_have_text(down)
    sync_api.expect(page.locator("#send")).to_be_enabled()
