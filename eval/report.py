"""Writing a run's figures: a JSON file with everything, and a table on the terminal."""

from __future__ import annotations

import json
import math
import platform
import time
from importlib import metadata
from pathlib import Path

from rich.console import Console
from rich.table import Table

from indexes import format_pages
from rag.embedding import resolve_precision


def run_dir(out: Path | None, kind: str) -> Path:
    path = out or Path("runs") / f"{kind}-{time.strftime('%Y%m%d-%H%M%S')}"
    path.mkdir(parents=True, exist_ok=True)
    return path


def versions() -> dict[str, str]:
    found = {"python": platform.python_version()}
    for package in ("ragstack", "sentence-transformers", "faiss-cpu", "bm25s", "torch", "ranx"):
        try:
            found[package] = metadata.version(package)
        except metadata.PackageNotFoundError:
            pass
    return found


def write_results(directory: Path, results: dict) -> Path:
    path = directory / "results.json"
    path.write_text(json.dumps({**results, "versions": versions()}, indent=2) + "\n")
    return path


def print_table(title: str, rows: dict[str, dict[str, float]], console: Console | None = None) -> None:
    """rows: row name -> metric -> value; rows with other metrics get a table of their own."""
    console = console or Console()
    groups: dict[tuple[str, ...], list[str]] = {}
    for name, values in rows.items():
        groups.setdefault(tuple(values), []).append(name)
    for metrics, names in groups.items():
        table = Table("", *metrics, title=title)
        for name in names:
            table.add_row(name, *(_cell(float(rows[name][m])) for m in metrics))
        console.print(table)


def index_settings(settings, manifest) -> dict:
    """The settings a figure depends on, as the index recorded them."""
    torch_backend = manifest.embed_backend == "torch"
    precision = resolve_precision(settings.embed_precision, model=manifest.model) if torch_backend else None
    return {
        "index": str(settings.index),
        "model": manifest.model,
        "embed_backend": manifest.embed_backend,
        "embed_precision": precision,
        "chunk_size": manifest.chunk_size,
        "chunk_overlap": manifest.chunk_overlap,
        "index_factory": manifest.index_factory,
        "doc_header": manifest.header_scheme,
        "table_context": manifest.table_scheme,
        "reranker": settings.reranker,
    }


def _cell(value) -> str:
    if isinstance(value, float):
        return "NaN" if math.isnan(value) else f"{value:.4f}"
    return str(value).replace("|", "\\|").replace("\n", " ")


def markdown_table(header: list[str], rows: list[list]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + " --- |" * len(header)]
    lines += ["| " + " | ".join(_cell(v) for v in row) + " |" for row in rows]
    return "\n".join(lines)


def figure_tables(figures: dict[str, dict[str, float | str]]) -> list[str]:
    """One Markdown table per set of metrics (retrieval and answer rows have different columns)."""
    groups: dict[tuple[str, ...], list[str]] = {}
    for row, metrics in figures.items():
        groups.setdefault(tuple(metrics), []).append(row)
    return [
        markdown_table(["", *metrics], [[row, *figures[row].values()] for row in rows])
        for metrics, rows in groups.items()
    ]


def _question_rows(results: dict) -> tuple[list[str], list[list], dict[str, list[float]]]:
    """Per-question table and the per-question scores to plot, for each kind of run."""
    if results.get("kind") == "qa":
        per_question = results["per_question"]
        judged = [key for key in (per_question[0] if per_question else {}) if key.startswith("judge:")]
        rows = [
            [
                r["id"],
                r["question"],
                r["reference"],
                r["answer"],
                ", ".join(f"{d} {format_pages(a, b)}" for d, a, b in r["cited"]) or "-",
                ", ".join(f"{e['doc']} {format_pages(e['page'], e['page'])}" for e in r["evidence"]),
                "hit" if r["page_hit@10"] else "miss",
                r["f1"],
                *(r[key] for key in judged),
            ]
            for r in per_question
        ]
        header = ["id", "question", "reference", "answer", "cited pages", "evidence", "page hit@10", "F1"]
        header += [key.removeprefix("judge:").replace("_", " ") for key in judged]
        scores = {m: [r[m] for r in results["per_question"]] for m in ("f1", "rouge_l")}
        return header, rows, scores
    if results.get("kind") == "llm-finetune-eval":
        rows = [
            [r["id"], "yes" if r["answerable"] else "no", r["reply"], r.get("f1", "-"),
             "yes" if r.get("citation_valid") else "-", "yes" if r["refused"] else "no"]
            for r in results["rows"]
        ]
        scores = {"F1": [r["f1"] for r in results["rows"] if r["answerable"]]}
        return ["id", "answerable", "reply", "F1", "valid citation", "refused"], rows, scores
    if "per_question" in results:  # pdfqa
        modes = list(results["figures"])
        rows = [
            [
                q["id"],
                ", ".join(f"{e['doc']} {format_pages(e['page'], e['page'])}" for e in q["evidence"]),
                *("hit" if q[f"{m}:hit_rate@10"] else "miss" for m in modes),
                *(q[f"{m}:mrr@10"] for m in modes),
            ]
            for q in results["per_question"]
        ]
        header = ["id", "evidence", *(f"{m} hit@10" for m in modes), *(f"{m} MRR@10" for m in modes)]
        scores = {f"{m} MRR@10": [q[f"{m}:mrr@10"] for q in results["per_question"]] for m in modes}
        return header, rows, scores
    per_query = results.get("per_query", {})  # beir
    modes = list(per_query)
    if not modes:
        return [], [], {}
    query_ids = list(per_query[modes[0]])
    rows = [[q, *(per_query[m][q]["ndcg@10"] for m in modes)] for q in query_ids]
    scores = {f"{m} nDCG@10": [per_query[m][q]["ndcg@10"] for q in query_ids] for m in modes}
    return ["query", *(f"{m} nDCG@10" for m in modes)], rows, scores


def write_report(directory: Path, results: dict, title: str) -> Path:
    """report.md (summary tables, NaN counts, plots, per-question rows) and its PNG plots."""
    from eval.plots import plot_bars, plot_curves, plot_histogram

    figures = results["figures"]
    header, rows, scores = _question_rows(results)
    plots = [
        p
        for p in (
            plot_curves(figures, directory / "curves.png"),
            plot_bars(figures, directory / "figures.png"),
            plot_histogram(scores, directory / "scores.png"),
        )
        if p is not None
    ]
    parts = [f"# {title}", "", *figure_tables(figures)]
    for group, counts in results.get("nan_counts", {}).items():
        parts.append(
            f"\nNaN ({group}, not averaged in, one per question where the metric was undefined): "
            + ", ".join(f"{m} {n}" for m, n in counts.items())
        )
    settings = results.get("settings", {})
    parts += ["", "Settings: " + ", ".join(f"{k} = {v}" for k, v in settings.items() if k != "index"), ""]
    parts += [f"![{p.stem}]({p.name})" for p in plots]
    if rows:
        parts += ["", f"## Per question ({len(rows)})", "", markdown_table(header, rows)]
    path = directory / "report.md"
    path.write_text("\n".join(parts) + "\n")
    return path
