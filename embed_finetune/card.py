"""The tuned model's card: the data it was tuned on and the before/after figures, added to the
card sentence-transformers writes, plus the same as JSON for programs."""

from __future__ import annotations

import json
from pathlib import Path


def _row(name: str, before: dict, after: dict) -> list[str]:
    return [name, *(f"{before[m]:.4f} -> {after[m]:.4f} ({after[m] - before[m]:+.4f})" for m in before)]


def card_section(results: dict) -> str:
    lines = [
        "## ragstack fine-tuning",
        "",
        f"- Base model: `{results['base_model']}`",
        f"- Training data: {results['source']}; {results['training_pairs']} pairs from "
        f"{results['training_queries']} queries; {results['train']['examples']} trained on with "
        f"{results['train']['negatives']} mined negative(s) each (the miner drops pairs it finds no safe "
        "negative for)",
        f"- Held out (never trained on): {results['held_out_queries']} queries",
        f"- Loss: {results['train']['loss']}"
        + (
            f" + Matryoshka {results['train']['matryoshka_dims']}"
            if results["train"]["matryoshka_dims"]
            else ""
        )
        + f"; {results['train']['epochs']} epoch(s), batch {results['train']['batch_size']}, "
        f"learning rate {results['train']['learning_rate']}, {results['train']['steps']} steps",
        f"- Training wall time: {results['timings']['train_s']:.0f} s "
        f"({results['timings']['train_s'] / max(results['train']['epochs'], 1e-9):.0f} s per epoch)",
        "",
        "Before -> after (ragstack's own retrieval: chunks of 200 tokens, FAISS, BM25 for hybrid):",
        "",
    ]
    before, after = results["before"], results["after"]
    groups: dict[tuple, list[str]] = {}
    for row in before:
        groups.setdefault(tuple(before[row]), []).append(row)
    for metrics, rows in groups.items():
        lines.append("| | " + " | ".join(metrics) + " |")
        lines.append("| --- " * (len(metrics) + 1) + "|")
        lines += ["| " + " | ".join(_row(r, before[r], after[r])) + " |" for r in rows if r in after]
        lines.append("")
    lines.append(
        "Use it: `rag reindex --model THIS_DIR` (or `rag ingest --model THIS_DIR` into a new index)."
    )
    return "\n".join(lines) + "\n"


def write_card(model_dir: Path, results: dict, comparison: Path) -> Path:
    readme = model_dir / "README.md"
    text = readme.read_text() if readme.is_file() else f"# {model_dir.name}\n"
    marker = "## ragstack fine-tuning"
    text = text.split(marker)[0].rstrip() + "\n\n" + card_section(results)
    text += f"\nFull before/after report: `{comparison.relative_to(model_dir)}`.\n"
    readme.write_text(text)
    (model_dir / "ragstack-finetune.json").write_text(
        json.dumps(
            {k: v for k, v in results.items() if k not in ("loss_log", "held_out_query_ids")}, indent=2
        )
        + "\n"
    )
    return readme
