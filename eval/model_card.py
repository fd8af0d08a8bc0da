"""A tuned model's card, written the same way by both fine-tuning commands: a section of the
README.md the training library wrote beside the weights (sentence-transformers and peft each
write one) saying what the model was tuned on and its before/after figures, and the same record
as `ragstack-finetune.json` for programs."""

from __future__ import annotations

import json
from dataclasses import asdict, fields, is_dataclass
from pathlib import Path

from eval.compare import Comparison, compare_runs
from eval.report import figure_tables, write_report, write_results

SECTION = "## ragstack fine-tuning"


def finetune_record(result) -> dict:
    """A fine-tuning result (either package's `FinetuneResult`) as JSON: its fields, with the
    training config and outcome (`config`, `train`) as one "train" entry and the loss log apart;
    the comparison is left out, as compare.md holds it."""
    record = {
        f.name: _plain(getattr(result, f.name))
        for f in fields(result)
        if f.name not in ("config", "train", "comparison")
    }
    trained = asdict(result.train)
    record["train"] = {**asdict(result.config), **{k: v for k, v in trained.items() if k != "log"}}
    record["loss_log"] = trained["log"]
    return record


def _plain(value):
    """JSON-ready: a dataclass (LoRA settings) as a dict, a path as a string."""
    if is_dataclass(value):
        return asdict(value)
    return str(value) if isinstance(value, Path) else value


def before_after_tables(comparison: Comparison) -> list[str]:
    """One Markdown table per set of metrics (retrieval and answer rows differ), each cell
    "before -> after (delta)"."""
    cells: dict[str, dict[str, str]] = {}
    for row, metric, before, after, delta in comparison.rows:
        cells.setdefault(row, {})[metric] = f"{before:.4f} -> {after:.4f} ({delta:+.4f})"
    return figure_tables(cells)


def write_card(directory: Path, facts: list[str], comparison: Comparison, usage: str, record: dict) -> Path:
    """Write the ragstack section of `directory/README.md`, in place of an earlier one and below
    what the library wrote, and `ragstack-finetune.json`; returns the README's path.

    Args:
        facts: Markdown lines on the base model, the data and the training, shown first.
        comparison: the before/after figures, as `rag eval compare` made them.
        usage: the line saying how to use the tuned model.
        record: what `ragstack-finetune.json` holds.
    """
    readme = directory / "README.md"
    text = readme.read_text() if readme.is_file() else f"# {directory.name}\n"
    section = [SECTION, "", *facts, ""]
    for table in before_after_tables(comparison):
        section += [table, ""]
    section += [f"Full before/after report: `{comparison.path.relative_to(directory)}`.", "", usage]
    readme.write_text(text.split(SECTION)[0].rstrip() + "\n\n" + "\n".join(section) + "\n")
    (directory / "ragstack-finetune.json").write_text(json.dumps(record, indent=2) + "\n")
    return readme


def save_finetune(directory: Path, result, usage: str) -> dict:
    """The end of every fine-tuning command: `eval/finetune.json` (the whole record) and the
    card (the record without its long lists); returns the record."""
    record = finetune_record(result)
    (directory / "eval" / "finetune.json").write_text(json.dumps(record, indent=2) + "\n")
    summary = {k: v for k, v in record.items() if k not in ("loss_log", "held_out_query_ids")}
    write_card(directory, result.card_facts(), result.comparison, usage, summary)
    return record


def write_before_after(report_dir: Path, before: tuple[str, dict], after: tuple[str, dict]) -> Comparison:
    """Each run's results and report in `report_dir/NAME`, and `compare.md` between them."""
    for name, run in (before, after):
        (report_dir / name).mkdir(parents=True, exist_ok=True)
        write_results(report_dir / name, run)
        write_report(report_dir / name, run, f"{name} on {run['queries']} held-out queries")
    return compare_runs(report_dir / before[0], report_dir / after[0], out=report_dir / "compare.md")
