"""Eval run directories for the web page: list them, show one's report as HTML, serve the files
beside it, compare two. A run directory is what `rag eval ...` writes (eval.report: results.json,
report.md and its PNG plots; eval.compare: compare.md).

A name a client sends is looked up in a listing of `runs_dir` (and a file name in a listing of
that run's directory), never joined to a path first: only plain directories and files found
there are read, and only those directly inside a run with a suffix in SERVED. Nothing here writes
into a run directory: a comparison is written to a temporary folder and read back.
"""

from __future__ import annotations

import json
import math
import os
import tempfile
from pathlib import Path
from urllib.parse import quote, unquote, urlsplit

from fastapi import HTTPException
from markdown_it import MarkdownIt

REPORT, RESULTS = "report.md", "results.json"
SERVED = {".png": "image/png", ".md": "text/markdown", ".json": "application/json", ".csv": "text/csv"}
MAX_REPORT_CHARS = 4 << 20  # a per-question table of thousands of rows; more is cut, not rendered


def list_runs(root: Path) -> list[dict]:
    """The runs under `root` (a folder with report.md or results.json), the latest changed first;
    none when `root` does not exist."""
    runs = []
    for name in _listing(root, directories=True):
        directory = root / name
        files = _listing(directory, directories=False)
        if REPORT in files or RESULTS in files:
            modified = max([_mtime(directory), *(_mtime(directory / f) for f in files)])
            runs.append(
                {"name": name, "modified": modified, "report": REPORT in files, "results": RESULTS in files}
            )
    return sorted(runs, key=lambda run: run["modified"], reverse=True)


def run_page(root: Path, name: str) -> dict:
    """Run `name`'s report.md as HTML (its relative links pointing at /v1/runs/NAME/files/...), or
    without one, its figures as tables; and the files that may be fetched beside it."""
    directory, files = _run(root, name)
    if REPORT in files:
        with open(directory / REPORT, encoding="utf-8", errors="replace") as report:
            text = report.read(MAX_REPORT_CHARS + 1)
        if len(text) > MAX_REPORT_CHARS:
            text = (
                text[:MAX_REPORT_CHARS] + f"\n\n*(cut after {MAX_REPORT_CHARS} characters: see {REPORT})*\n"
            )
    else:
        from eval.report import figure_tables

        text = "\n\n".join([f"# {name}", *figure_tables(_figures(directory, name))])
    return {"name": name, "html": render_markdown(text, files_url(name)), "files": sorted(files)}


def run_file(root: Path, name: str, file: str) -> tuple[Path, str]:
    """A file directly inside run `name` and its media type; 404 unless it is listed there."""
    directory, files = _run(root, name)
    if file not in files:
        raise HTTPException(404, f"no file {file[:200]!r} in run {name!r}")
    return directory / file, SERVED[Path(file).suffix.lower()]


def compare(root: Path, a: str, b: str) -> dict:
    """Runs `a` and `b` side by side as `rag eval compare` shows them: HTML and the rows
    (row, metric, a, b, delta; a metric one run lacks is null)."""
    from eval.compare import compare_runs

    directories = []
    for name in (a, b):
        directory, files = _run(root, name)
        if RESULTS not in files:
            raise HTTPException(422, f"run {name!r} has no {RESULTS} to compare")
        _figures(directory, name)  # 422 unless it holds figures
        directories.append(directory)
    with tempfile.TemporaryDirectory() as scratch:
        out = Path(scratch) / "compare.md"
        try:
            comparison = compare_runs(*directories, out=out)
        except (TypeError, ValueError) as err:  # a figure that is not a number
            raise HTTPException(422, f"runs {a!r} and {b!r} cannot be compared: {err}") from None
        text = out.read_text()
    rows = [
        dict(zip(("row", "metric", "a", "b", "delta"), [row, metric, *map(_number, values)], strict=True))
        for row, metric, *values in comparison.rows
    ]
    # compare_runs names the runs by their folders, which are `a` and `b`
    return {"a": a, "b": b, "html": render_markdown(text, files_url(b)), "rows": rows}


def files_url(name: str) -> str:
    return f"/v1/runs/{quote(name, safe='')}/files/"


def render_markdown(text: str, base: str) -> str:
    """CommonMark with tables to HTML; raw HTML in the text is escaped, not passed through, and
    each relative link or image is pointed at `base` + its (quoted) name."""
    md = MarkdownIt("commonmark", {"html": False}).enable("table")
    tokens = md.parse(text)
    for token in tokens:
        for child in token.children or []:
            attribute = {"image": "src", "link_open": "href"}.get(child.type)
            target = child.attrGet(attribute) if attribute else None
            if isinstance(target, str) and _relative(target):
                child.attrSet(attribute, base + quote(unquote(urlsplit(target).path), safe=""))
    return md.renderer.render(tokens, md.options, {})


def _relative(url: str) -> bool:
    parts = urlsplit(url)
    return not (parts.scheme or parts.netloc or url.startswith(("/", "#"))) and bool(parts.path)


def _run(root: Path, name: str) -> tuple[Path, list[str]]:
    """Run `name`'s folder and its servable files; 404 unless `name` is a run listed in `root`."""
    if _plain(name) and name in _listing(root, directories=True):
        files = _listing(root / name, directories=False)
        if REPORT in files or RESULTS in files:
            return root / name, files
    raise HTTPException(404, f"no run {name[:200]!r}")


def _figures(directory: Path, name: str) -> dict[str, dict]:
    """The results' figures (row -> metric -> value); 422 when results.json holds none."""
    try:
        figures = json.loads((directory / RESULTS).read_text()).get("figures")
    except (OSError, ValueError, AttributeError):
        figures = None
    if not isinstance(figures, dict) or not all(isinstance(m, dict) for m in figures.values()):
        raise HTTPException(422, f"run {name!r}: {RESULTS} is not a results file (no figures)")
    return figures


def _listing(folder: Path, directories: bool) -> list[str]:
    """Names in `folder` of plain (not linked) directories, or of plain files with a suffix in
    SERVED; hidden and oddly named entries left out. Empty when the folder cannot be read."""
    try:
        with os.scandir(folder) as entries:
            found = [
                e.name
                for e in entries
                if _plain(e.name)
                and (
                    e.is_dir(follow_symlinks=False)
                    if directories
                    else e.is_file(follow_symlinks=False) and Path(e.name).suffix.lower() in SERVED
                )
            ]
    except OSError:
        return []
    return sorted(found)


def _plain(name: str) -> bool:
    return bool(name) and not name.startswith(".") and not any(s in name for s in ("/", "\\", "..", "\0"))


def _mtime(path: Path) -> float:
    try:
        return path.stat(follow_symlinks=False).st_mtime
    except OSError:
        return 0.0


def _number(value: float) -> float | None:
    """JSON has no NaN: a metric one run lacks is null."""
    return None if isinstance(value, float) and not math.isfinite(value) else value
