"""`rag eval compare`: two runs' figures side by side with deltas, so a change shows its effect."""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path

from rich.table import Table

from eval.report import markdown_table


@dataclass
class Comparison:
    rows: list[list]  # [row, metric, a, b, delta]
    rich: Table
    path: Path


def load_run(path: Path) -> dict:
    path = Path(path)
    file = path / "results.json" if path.is_dir() else path
    if not file.is_file():
        raise FileNotFoundError(f"no results.json in {path}")
    try:
        return json.loads(file.read_text())
    except json.JSONDecodeError as err:
        raise ValueError(f"{file} is not a results file: {err}") from err


def compare_runs(run_a: Path, run_b: Path, out: Path | None = None) -> Comparison:
    a, b = load_run(run_a), load_run(run_b)
    rows = []
    for row in dict.fromkeys([*a["figures"], *b["figures"]]):
        metrics_a, metrics_b = a["figures"].get(row, {}), b["figures"].get(row, {})
        for metric in dict.fromkeys([*metrics_a, *metrics_b]):
            va, vb = metrics_a.get(metric, math.nan), metrics_b.get(metric, math.nan)
            rows.append([row, metric, va, vb, vb - va])
    name_a, name_b = Path(run_a).name, Path(run_b).name
    header = ["", "metric", name_a, name_b, "delta"]
    table = Table(*header, title=f"{name_a} -> {name_b}")
    for row, metric, va, vb, delta in rows:
        colour = "green" if delta > 0 else "red" if delta < 0 else "white"
        table.add_row(row, metric, f"{va:.4f}", f"{vb:.4f}", f"[{colour}]{delta:+.4f}[/{colour}]")
    changed = {
        k: (a.get("settings", {}).get(k), v)
        for k, v in b.get("settings", {}).items()
        if a.get("settings", {}).get(k) != v and k != "index"
    }
    path = Path(out) if out else (Path(run_b) if Path(run_b).is_dir() else Path(run_b).parent) / "compare.md"
    lines = [f"# {name_a} -> {name_b}", "", markdown_table(header, rows), ""]
    lines += [f"Settings changed: {k}: {va} -> {vb}" for k, (va, vb) in changed.items()] or ["Same settings."]
    path.write_text("\n".join(lines) + "\n")
    path.with_suffix(".json").write_text(
        json.dumps(
            {
                "a": str(run_a),
                "b": str(run_b),
                "settings_changed": changed,
                "rows": [dict(zip(["row", "metric", "a", "b", "delta"], r, strict=True)) for r in rows],
            },
            indent=2,
        )
    )
    return Comparison(rows, table, path)
