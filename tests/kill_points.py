"""SIGKILL an ingest and a re-index at 20 points, and check what each crash leaves behind.

Each point names a function the writer calls and which call of it dies (`KillPoint`): the
child process replaces that function with one that SIGKILLs the process on its nth call (no
clean-up, no flush: as a power cut or the OOM killer), so every run dies exactly where it says,
never at whatever moment a sleep happened to end. The points cover parsing, embedding, staging,
writing the generation and publishing it.

After each kill:
  - the index opens, and is the previous generation with exactly its previous search results,
    or (killed once CURRENT named the new one) the complete new generation;
  - an ingest run again finishes, and the index then holds what a run that was never killed
    makes: the same documents, each chunk once (chunk count = sum of the documents' chunks, no
    text twice in one document), no staged or temporary file left.

Children are forked from one helper process (`zygote`) that imported torch and loaded the
embedding model once but never ran it: a fork per point costs milliseconds instead of the 5-15 s
a fresh interpreter takes, and each child is still its own process, killed for real, holding the
real index lock.

`run_kill_points(workdir)` is what tests/test_crash_points.py and the reliability bench call.
"""

from __future__ import annotations

import hashlib
import importlib
import json
import os
import select
import shutil
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

HERE = Path(__file__).resolve().parent
if str(HERE) not in sys.path:
    sys.path.insert(0, str(HERE))  # pdfs.py, when imported from the bench

CHUNKING = {"chunk_size": 64, "chunk_overlap": 8}  # small chunks: several per page
GROUP = 4  # rag.ingest.EMBED_GROUP in the children: each new document is its own group
CHILD_TIMEOUT_S = 180.0


@dataclass(frozen=True)
class KillPoint:
    """Die at the `nth` call of `target` ("module:attribute" or "module:Class.method") while
    running `scenario` ("ingest": new files; "reindex": a changed, a removed, a new file, --prune)."""

    scenario: str
    target: str
    nth: int = 1

    @property
    def name(self) -> str:
        return f"{self.scenario}@{self.target}#{self.nth}"


POINTS = [
    # parse
    KillPoint("ingest", "rag.sources:Parsed", 1),  # the first file parsed and chunked
    KillPoint("ingest", "rag.chunking:Chunker.split", 2),
    KillPoint("reindex", "rag.sources:document_header", 2),  # the second file's header
    # embed
    KillPoint("ingest", "rag.embedding:Embedder.encode", 1),
    KillPoint("ingest", "rag.embedding:Embedder.encode", 2),
    KillPoint("reindex", "rag.embedding:Embedder.encode", 1),
    # stage
    KillPoint("ingest", "rag.ingest:_stage", 1),
    KillPoint("ingest", "numpy:savez", 2),  # the partial file open, nothing in it
    KillPoint("ingest", "os:replace", 1),  # the partial file complete and synced, not renamed
    KillPoint("reindex", "rag.ingest:_stage", 2),
    # write the next generation
    KillPoint("ingest", "indexes.store:Writer.publish", 1),
    KillPoint("ingest", "indexes.store:write_records", 1),
    KillPoint("ingest", "numpy:save", 1),
    KillPoint("reindex", "indexes.dense:save", 1),
    KillPoint("ingest", "indexes.bm25:save", 1),
    KillPoint("reindex", "indexes.store:_fsync_tree", 1),
    # publish
    KillPoint("ingest", "os:rename", 1),
    KillPoint("reindex", "indexes.store:_atomic_write", 1),
    KillPoint("ingest", "indexes.store:Writer._collect_garbage", 1),
    KillPoint("reindex", "rag.ingest:_clear_staging", 1),
]

# queries whose best hit is one known sentence; QUERIES also rank filler
FACTS = [
    "Zebras migrate across the Serengeti",
    "Europa hides a salty ocean",
    "Photosynthesis in chloroplasts",
    "lighthouse keeper painted the tower",
    "glacier retreated up the valley",
]
QUERIES = FACTS + ["quarterly revenue margin forecast"]


# ---- the documents ---------------------------------------------------------------------------


def _filler(topic: str) -> list[str]:
    from pdfs import lorem

    return [lorem(topic, 25)]


BASE = {
    "zoo.pdf": ["Zebras migrate across the Serengeti every July for fresh grass.", *_filler("zoo")],
    "plants.pdf": ["Photosynthesis turns sunlight into energy inside chloroplasts.", *_filler("leaf")],
    "space.pdf": [*_filler("orbit"), "Jupiter's moon Europa hides a salty ocean beneath its icy crust."],
}
SCENARIOS = {
    "ingest": {
        **BASE,
        "coast.pdf": ["The lighthouse keeper painted the tower red in 1911.", *_filler("coast")],
        "alps.pdf": [*_filler("alps"), "The glacier retreated up the valley by two kilometres."],
        "farm.pdf": _filler("farm"),
    },
    "reindex": {
        "zoo.pdf": ["Zebras migrate across the Serengeti every October, a million.", *_filler("zoo2")],
        "space.pdf": BASE["space.pdf"],
        "coast.pdf": ["The lighthouse keeper painted the tower red in 1911.", *_filler("coast")],
    },
}


def _write_folder(folder: Path, pages_by_name: dict[str, list[str]], templates: Path) -> None:
    """Make `folder` hold exactly these PDFs (byte-identical every time: copied from templates)."""
    from pdfs import make_pdf

    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    templates.mkdir(parents=True, exist_ok=True)
    for name, pages in pages_by_name.items():
        template = templates / f"{hashlib.sha1(repr(pages).encode()).hexdigest()[:16]}.pdf"
        if not template.exists():
            make_pdf(template, pages)
        shutil.copyfile(template, folder / name)


# ---- what an index looks like ----------------------------------------------------------------


@dataclass
class View:
    """One index as a reader sees it."""

    generation: str | None
    documents: dict[str, int]  # name -> chunks
    results: dict[str, list[tuple]]  # query -> (doc, chunk_id, page, score, text) of the top 5
    problems: list[str] = field(default_factory=list)

    def top(self) -> dict[str, tuple]:
        """The best hit of each fact query, by document and text (scores left out: a vector
        computed in another batch differs in the last bits)."""
        return {q: (r[0][0], r[0][4]) if r else () for q, r in self.results.items() if q in FACTS}


def view(index: Path, embedder) -> View:
    """Open the published generation, check it is whole, and search it."""
    from indexes import IndexStore
    from rag.retrieval import Retriever

    store = IndexStore(index)
    problems = []
    with store.open() as snap:
        documents = {d.name: d.chunks for d in snap.documents()}
        chunks = snap.records.all_chunks()
        if not snap.dense.ntotal == snap.n_chunks == len(chunks):
            problems.append(f"{snap.dense.ntotal} vectors, {snap.n_chunks} rows, {len(chunks)} chunks")
    if sum(documents.values()) != len(chunks):
        problems.append(f"documents count {sum(documents.values())} chunks, the records hold {len(chunks)}")
    for name, n in documents.items():
        if sum(c.doc == name for c in chunks) != n:
            problems.append(f"{name}: {n} chunks recorded, {sum(c.doc == name for c in chunks)} stored")
    keys = {(c.doc, c.text_hash) for c in chunks}
    if len(keys) != len(chunks) or len({c.chunk_id for c in chunks}) != len(chunks):
        problems.append("a chunk is stored twice")
    found = Retriever(index, embedder).search_batch(QUERIES, k=5)  # one encode for all queries
    results = {
        q: [(r.doc, r.chunk_id, r.page_start, round(r.score, 5), r.text) for r in hits]
        for q, hits in zip(QUERIES, found, strict=True)
    }
    return View(store.current_name(), documents, results, problems)


def leftovers(index: Path, current: str | None, published: bool) -> list[str]:
    """What a finished writer must not leave: temporary files, unpublished generations, and
    staged vectors once it `published` (a run with nothing to publish leaves those of a run
    killed after its swap: they are in the index already and go with the next publish)."""
    staging = index / "staging"
    found = [p.name for p in staging.glob("*") if published or p.suffix != ".npz"] if staging.is_dir() else []
    generations = (index / "generations").iterdir()
    found += [p.name for p in generations if p.name.startswith(".") or p.name > (current or "")]
    if (index / "CURRENT.tmp").exists():
        found.append("CURRENT.tmp")
    return found


# ---- the driver --------------------------------------------------------------------------------


@dataclass
class KillReport:
    survived: int = 0
    total: int = 0
    failures: dict[str, list[str]] = field(default_factory=dict)  # point -> what went wrong
    seconds: float = 0.0


def _settings(index: Path):
    from rag.settings import Settings

    return Settings(index=index, **CHUNKING)


def run_kill_points(workdir: Path, embedder=None, points: list[KillPoint] | None = None) -> KillReport:
    """Kill an ingest at each of `points` (all 20 by default) and check the index after each;
    returns how many points the index survived (opened intact, then completed by a re-run)."""
    from rag.embedding import Embedder
    from rag.ingest import ingest

    started = time.perf_counter()
    points = POINTS if points is None else points
    embedder = embedder or Embedder()
    workdir, templates, docs = Path(workdir), Path(workdir) / "templates", Path(workdir) / "docs"
    base = workdir / "base"
    _write_folder(docs, BASE, templates)
    ingest([docs], _settings(base), progress=False, embedder=embedder)
    before = view(base, embedder)
    expected = {}
    for scenario, files in SCENARIOS.items():  # what a run that is never killed makes
        _write_folder(docs, files, templates)
        shutil.copytree(base, workdir / f"ref-{scenario}")
        settings = _settings(workdir / f"ref-{scenario}")
        ingest([docs], settings, prune=scenario == "reindex", progress=False, embedder=embedder)
        expected[scenario] = view(settings.index, embedder)
    report = KillReport(total=len(points))
    with Zygote() as zygote:
        for i, point in enumerate(points):
            _write_folder(docs, SCENARIOS[point.scenario], templates)
            index = workdir / f"kill-{i:02d}"
            shutil.copytree(base, index)
            problems = _kill_and_check(zygote, point, docs, index, before, expected[point.scenario], embedder)
            if problems:
                report.failures[point.name] = problems
            else:
                report.survived += 1
                shutil.rmtree(index, ignore_errors=True)
    report.seconds = time.perf_counter() - started
    return report


def _kill_and_check(
    zygote: Zygote, point: KillPoint, docs: Path, index: Path, before: View, after: View, embedder
) -> list[str]:
    """Kill an ingest of `docs` into `index` at `point`; what went wrong, if anything."""
    from rag.ingest import ingest

    outcome = zygote.run(point, docs, index)
    if outcome != -signal.SIGKILL:
        return [f"the child was not killed there (exit {outcome})"]
    try:
        crashed = view(index, embedder)
    except Exception as err:  # noqa: BLE001 - an index that does not open is the failure
        return [f"the index does not open after the kill: {type(err).__name__}: {err}"]
    problems = [f"after the kill: {p}" for p in crashed.problems]
    if crashed.generation == before.generation:
        if (crashed.documents, crashed.results) != (before.documents, before.results):
            problems.append("after the kill: the previous generation answers differently")
    elif crashed.documents != after.documents or crashed.top() != after.top():
        problems.append(f"after the kill: generation {crashed.generation} is not the expected new one")
    try:
        prune = point.scenario == "reindex"
        rerun = ingest([docs], _settings(index), prune=prune, progress=False, embedder=embedder)
        again = view(index, embedder)
    except Exception as err:  # noqa: BLE001
        return [*problems, f"the re-run fails: {type(err).__name__}: {err}"]
    problems += [f"after the re-run: {p}" for p in again.problems]
    if rerun.failed:
        problems.append(f"the re-run failed files: {[f.name for f in rerun.failed]}")
    if again.documents != after.documents:
        problems.append(f"after the re-run: documents {again.documents}, expected {after.documents}")
    if again.top() != after.top():
        problems.append(f"after the re-run: best hits {again.top()}, expected {after.top()}")
    if found := leftovers(index, again.generation, published=rerun.generation != crashed.generation):
        problems.append(f"after the re-run, left behind: {found}")
    return problems


class Zygote:
    """The helper process that forks one child per kill point (see the module's docstring)."""

    def __enter__(self) -> Zygote:
        self.process = subprocess.Popen(
            [sys.executable, __file__, "zygote"], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
            text=True, cwd=HERE.parent,
        )
        return self

    def run(self, point: KillPoint, docs: Path, index: Path) -> int:
        """Run the point's child; its exit as subprocess reports it (-9: killed)."""
        order = {"target": point.target, "nth": point.nth, "docs": str(docs), "index": str(index),
                 "prune": point.scenario == "reindex"}
        self.process.stdin.write(json.dumps(order) + "\n")
        self.process.stdin.flush()
        ready, _, _ = select.select([self.process.stdout], [], [], CHILD_TIMEOUT_S + 120)
        line = self.process.stdout.readline() if ready else ""
        if not line:
            raise RuntimeError(f"the kill helper gave no answer for {point.name}")
        return int(json.loads(line)["exit"])

    def __exit__(self, *exc: object) -> None:
        self.process.stdin.close()
        try:
            self.process.wait(30)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()


def zygote() -> None:
    """Load the model once, then fork a child per order read from stdin; print its exit."""
    import torch

    import indexes.store  # noqa: F401 - imported before forking: the children start warm
    import rag.ingest  # noqa: F401
    from rag.embedding import Embedder

    embedder = Embedder()
    torch.set_num_threads(1)  # the children share small CPUs with the test process
    for line in sys.stdin:
        order = json.loads(line)
        pid = os.fork()
        if pid == 0:
            _child(order, embedder)
        print(json.dumps({"exit": _wait(pid)}), flush=True)


def _wait(pid: int) -> int:
    deadline = time.monotonic() + CHILD_TIMEOUT_S
    while True:
        done, status = os.waitpid(pid, os.WNOHANG)
        if done:
            return -os.WTERMSIG(status) if os.WIFSIGNALED(status) else os.WEXITSTATUS(status)
        if time.monotonic() > deadline:
            os.kill(pid, signal.SIGTERM)  # hung: reported as killed by SIGTERM, not by the point
            os.waitpid(pid, 0)
            return -signal.SIGTERM
        time.sleep(0.02)


def _child(order: dict, embedder) -> None:
    """Arm the kill point and ingest; exits 0 when the point was never reached."""
    code = 1
    try:
        os.dup2(2, 1)  # stdout is the zygote's answer channel
        import rag.ingest
        from rag.ingest import ingest

        rag.ingest.EMBED_GROUP = GROUP
        _arm(order["target"], order["nth"])
        settings = _settings(Path(order["index"]))
        ingest([Path(order["docs"])], settings, prune=order["prune"], progress=False, embedder=embedder)
        code = 0
    except BaseException:  # noqa: BLE001
        import traceback

        traceback.print_exc()
    finally:
        os._exit(code)


def _arm(target: str, nth: int) -> None:
    """Replace `target` with a function that SIGKILLs this process at its nth call."""
    module, _, attribute = target.partition(":")
    owner = importlib.import_module(module)
    *path, name = attribute.split(".")
    for part in path:
        owner = getattr(owner, part)
    original, calls = getattr(owner, name), [0]

    def dying(*args, **kwargs):
        calls[0] += 1
        if calls[0] == nth:
            os.kill(os.getpid(), signal.SIGKILL)
        return original(*args, **kwargs)

    setattr(owner, name, dying)


if __name__ == "__main__":
    if sys.argv[1:] == ["zygote"]:
        zygote()
    else:  # python tests/kill_points.py WORKDIR: the count, for a person or a bench
        result = run_kill_points(Path(sys.argv[1]))
        print(json.dumps(result.__dict__, indent=1))
