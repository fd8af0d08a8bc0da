"""Reliability of a service put on a network: one table, every failure column meant to be zero.

    python bench/reliability.py [--workdir DIR] [--soak-s 30] [--fuzz-examples 25] [--real-generator]

Rows (the probes are those the tests assert, in tests/):
  hostile files     the generated corpus (tests/hostile_pdfs.py, 200+ broken or hostile files)
                    and good PDFs, ingested by a separate process: files tried, reported failed
                    with a reason, crashes (the process died), hangs (past the timeout), and the
                    peak memory of that process (parsing runs in sandboxed workers)
  kill points       `rag ingest` and a re-index SIGKILLed at 20 points (tests/kill_points.py)
  schema fuzz       schemathesis over the app's own OpenAPI document, each case with and without
                    a key (tests/service_probes.py)
  during re-index   8 clients search while the server re-indexes its upload folder
  soak              16 clients mix search, chat and listing for --soak-s seconds
  cross-collection  every collection endpoint tried with keys scoped to another collection
  2 MB message      one chat message of 2 MB, and a 150 MB body without a key: status, and the
                    server's memory growth

The server runs in this process (uvicorn in a thread, on 127.0.0.1), so its memory is this
process's. The generator is a tiny fake that answers at once (the rows are about plumbing)
unless --real-generator asks for the bundled SmolLM2.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "tests")]

import httpx  # noqa: E402
from rich.console import Console  # noqa: E402
from rich.table import Table  # noqa: E402

INGEST_CHILD = """
import json, re, sys
from pathlib import Path
from rag.ingest import ingest
from rag.settings import Settings
report = ingest([Path(sys.argv[1])], Settings(index=Path(sys.argv[2])), progress=False)
# VmHWM, not getrusage's ru_maxrss, which survives exec and so counts the forking parent
peak_mb = int(re.search(r"VmHWM:\s+(\d+)", open("/proc/self/status").read()).group(1)) / 1024
files = [{"name": f.name, "status": f.status, "kind": f.error_kind, "error": f.error} for f in report.files]
print(json.dumps({"files": files, "peak_mb": peak_mb}))
"""


def hostile_row(workdir: Path, timeout_s: float = 900) -> dict:
    from hostile_pdfs import make_hostile_corpus
    from pdfs import lorem, make_pdf

    folder = workdir / "hostile"
    expected = make_hostile_corpus(folder)
    good = {f"good_{i}.pdf": f"Fact {i}: the reliability bench indexed this file. " + lorem(f"g{i}", 20)
            for i in range(5)}
    for name, text in good.items():
        make_pdf(folder / name, [text])
    bad = {n for n, want in expected.items() if want is not None and None not in _as_set(want)}
    started = time.perf_counter()
    try:
        command = [sys.executable, "-c", INGEST_CHILD, str(folder), str(workdir / "hostile-index")]
        done = subprocess.run(command, capture_output=True, text=True, timeout=timeout_s)
    except subprocess.TimeoutExpired:
        return {"tried": len(expected), "reported": 0, "crashes": 0, "hangs": 1, "peak_mb": float("nan")}
    if done.returncode != 0:
        return {"tried": len(expected), "reported": 0, "crashes": 1, "hangs": 0, "peak_mb": float("nan"),
                "error": done.stderr[-2000:]}
    result = json.loads(done.stdout.strip().splitlines()[-1])
    by_name = {f["name"]: f for f in result["files"]}
    reported = sum(1 for n in bad if by_name.get(n, {}).get("status") == "failed" and by_name[n]["error"])
    good_indexed = sum(by_name.get(n, {}).get("status") == "added" for n in good)
    return {"tried": len(expected), "bad": len(bad), "reported": reported, "crashes": 0, "hangs": 0,
            "peak_mb": result["peak_mb"], "good_indexed": f"{good_indexed}/{len(good)}",
            "seconds": time.perf_counter() - started}


def _as_set(want) -> frozenset:
    return want if isinstance(want, frozenset) else frozenset({want})


def kill_row(workdir: Path, embedder) -> dict:
    from kill_points import run_kill_points

    report = run_kill_points(workdir / "kills", embedder)
    return {"survived": report.survived, "total": report.total, "failures": report.failures,
            "seconds": report.seconds}


def service_rows(workdir: Path, embedder, generator, soak_s: float, fuzz_examples: int) -> dict:
    from live_server import Server
    from pdfs import lorem, make_pdf
    from service_probes import (
        ADMIN,
        FINANCE_READER,
        FINANCE_SECRET,
        FINANCE_WRITER,
        OTHER_SECRET,
        OTHER_WRITER,
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

    server, _ = start_secured(workdir, generator, embedder)
    app = server.server.config.app
    rows: dict = {}
    try:
        http = httpx.Client(base_url=server.url, headers=bearer(ADMIN), timeout=600)
        http.post("/v1/chat/completions", json={"messages": [{"role": "user", "content": "warm up?"}]})

        before = rss_mb()
        two_mb = http.post("/v1/chat/completions",
                           json={"messages": [{"role": "user", "content": "x" * (2 << 20)}]}).status_code
        body_150 = raw_post(server.url, "/v1/chat/completions", {}, 150 << 20, 2 << 20)
        rows["big"] = {"2MB status": two_mb, "150MB status": body_150, "growth_mb": rss_mb() - before}

        session = http.post("/v1/collections/other/sessions").json()["id"]
        job = http.post("/v1/collections/other/reindex").json()["id"]
        attempts = leaks = 0
        for key, collection, ids, secret in [
            (FINANCE_READER, "other", {"doc": "wildlife.pdf", "session": session, "job": job}, OTHER_SECRET),
            (FINANCE_WRITER, "other", {"doc": "wildlife.pdf", "session": session, "job": job}, OTHER_SECRET),
            (OTHER_WRITER, "finance", {"doc": "ledger.pdf"}, FINANCE_SECRET),
            (OTHER_WRITER, "default", {"doc": "acme_2021.pdf"}, "4.2 billion"),
        ]:
            n, found = cross_collection(server.url, key, collection, ids, secret)
            attempts, leaks = attempts + n, leaks + len(found)
        rows["cross"] = {"attempts": attempts, "leaks": leaks}

        uploads = app.state.rag.default().uploads
        for i in range(8):
            make_pdf(uploads / f"minutes_{i}.pdf", [lorem(f"meeting{i}", 80), lorem(f"agenda{i}", 80)])
        start = lambda: http.post("/v1/reindex").json()  # noqa: E731
        run = queries_during_job(server.url, ADMIN, 8, start, "/v1/jobs/{id}")
        rows["reindex"] = {"queries": run["queries"], "during": run["during"],
                           "failures": len(run["failures"]), "job": run["job"]["status"]}

        before = rss_mb()
        result = soak(server.url, ADMIN, clients=16, seconds=soak_s)
        rows["soak"] = {"requests": result["requests"], "errors": len(result["errors"]),
                        "p99_s": result["p99_s"], "growth_mb": rss_mb() - before}
        http.close()
    finally:
        server.stop()

    fuzz_settings = Settings(index=workdir / "fuzz-index", sessions=workdir / "fuzz.sqlite", api_keys=ADMIN)
    fuzz_app = create_app(fuzz_settings, generator, embedder)
    fuzz_server = Server(fuzz_app)
    try:
        sent, errors = fuzz(fuzz_app.openapi(), fuzz_server.url, ADMIN, fuzz_examples)
        rows["fuzz"] = {"sent": sent, "5xx": len(errors), "examples": errors[:5]}
    finally:
        fuzz_server.stop()
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--workdir", type=Path, default=None)
    parser.add_argument("--soak-s", type=float, default=30.0)
    parser.add_argument("--fuzz-examples", type=int, default=25)
    parser.add_argument("--real-generator", action="store_true")
    parser.add_argument("--skip", default="", help="comma-separated: hostile,kills,service")
    args = parser.parse_args()
    from service_probes import QuickGenerator

    from rag.embedding import Embedder

    skip = set(filter(None, args.skip.split(",")))
    embedder = Embedder()
    if args.real_generator:
        from rag.generation import TransformersGenerator

        generator = TransformersGenerator()
    else:
        generator = QuickGenerator()
    with tempfile.TemporaryDirectory() as tmp:
        workdir = args.workdir or Path(tmp)
        workdir.mkdir(parents=True, exist_ok=True)
        figures: dict = {}
        if "hostile" not in skip:
            figures["hostile"] = hostile_row(workdir)
        if "kills" not in skip:
            figures["kills"] = kill_row(workdir, embedder)
        if "service" not in skip:
            figures.update(service_rows(workdir, embedder, generator, args.soak_s, args.fuzz_examples))
    table = Table("probe", "tried", "failures", "figures", title="reliability")
    if "hostile" in figures:
        h = figures["hostile"]
        table.add_row("hostile files", str(h["tried"]),
                      f"{h['crashes']} crashes, {h['hangs']} hangs, "
                      f"{h.get('bad', 0) - h['reported']} unreported",
                      f"{h['reported']} of {h.get('bad', '?')} bad reported with a reason; good indexed "
                      f"{h.get('good_indexed', '?')}; peak {h['peak_mb']:.0f} MB")
    if "kills" in figures:
        k = figures["kills"]
        table.add_row("kill points", str(k["total"]), str(k["total"] - k["survived"]),
                      f"{k['survived']} of {k['total']} survived ({k['seconds']:.0f} s)")
    if "fuzz" in figures:
        table.add_row("schema fuzz", str(figures["fuzz"]["sent"]), f"{figures['fuzz']['5xx']} 5xx",
                      f"{args.fuzz_examples} examples per operation, with and without a key")
    if "reindex" in figures:
        r = figures["reindex"]
        table.add_row("queries during re-index", str(r["queries"]), str(r["failures"]),
                      f"{r['during']} answered while it ran; job {r['job']}")
    if "soak" in figures:
        s = figures["soak"]
        table.add_row("soak (16 clients)", str(s["requests"]), str(s["errors"]),
                      f"p99 {s['p99_s']:.3f} s; memory growth {s['growth_mb']:.0f} MB "
                      f"over {args.soak_s:.0f} s")
    if "cross" in figures:
        c = figures["cross"]
        table.add_row("cross-collection", str(c["attempts"]), f"{c['leaks']} leaks", "403/404 only")
    if "big" in figures:
        b = figures["big"]
        wrong = int(b["2MB status"] != 413) + int(b["150MB status"] != 401)
        table.add_row("2 MB message / 150 MB body", "2", str(wrong),
                      f"{b['2MB status']} / {b['150MB status']}; memory growth {b['growth_mb']:.0f} MB")
    Console(width=150).print(table)
    print(json.dumps(figures, indent=1, default=str))


if __name__ == "__main__":
    main()
