"""`rag finetune-llm` and `rag export-merged`: parse flags, run one job, print the figures."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

console = Console()


def finetune_llm(
    out: Annotated[Path, typer.Option(help="Directory for the adapter (with its card and report)")],
    data: Annotated[Path | None, typer.Option(help="SQuAD JSON, or PDF-QA JSONL (with --pdfs)")] = None,
    pdfs: Annotated[Path | None, typer.Option(help="Folder of the PDFs a PDF-QA file is about")] = None,
    index: Annotated[
        Path | None, typer.Option(help="Index of the corpus; without --data, questions are written from it")
    ] = None,
    synthetic: Annotated[int, typer.Option(help="Without --data: questions to write from chunks")] = 1000,
    question_style: Annotated[str, typer.Option(help="cloze (no LLM) or llm (base or --teacher-url)")] = (
        "cloze"
    ),
    teacher_url: Annotated[
        str | None, typer.Option(help="OpenAI-compatible URL of a model writing llm questions")
    ] = None,
    base: Annotated[str, typer.Option(help="Generator to tune: bundled name, dir or hub id")] = (
        "SmolLM2-135M-Instruct"
    ),
    epochs: Annotated[float, typer.Option(help="Passes over the training examples")] = 1.0,
    max_steps: Annotated[int, typer.Option(help="Stop after this many steps (-1: all epochs)")] = -1,
    batch_size: Annotated[int, typer.Option(help="Examples per step")] = 4,
    lr: Annotated[float, typer.Option("--lr", help="Learning rate")] = 2e-4,
    rank: Annotated[int, typer.Option(help="LoRA rank")] = 16,
    alpha: Annotated[int, typer.Option(help="LoRA alpha")] = 32,
    dropout: Annotated[float, typer.Option(help="LoRA dropout")] = 0.05,
    target_modules: Annotated[str, typer.Option(help="Comma-separated module names")] = (
        "q_proj,k_proj,v_proj,o_proj,gate_proj,up_proj,down_proj"
    ),
    quantize: Annotated[bool, typer.Option(help="4-bit NF4 base (QLoRA); --no-quantize: plain LoRA")] = True,
    test_fraction: Annotated[float, typer.Option(help="Share of articles/documents held out")] = 0.2,
    refusal_fraction: Annotated[
        float, typer.Option(min=0.0, max=0.9, help="Share of prompts with unrelated sources (refusal target)")
    ] = 0.2,
    eval_limit: Annotated[int | None, typer.Option(help="Score at most this many held-out questions")] = None,
    max_tokens: Annotated[int, typer.Option(help="Answer bound in the evaluation")] = 64,
    resume: Annotated[bool, typer.Option(help="Continue an interrupted run in --out")] = False,
) -> None:
    """QLoRA-tune the generator to answer from sources with [n] citations and to refuse when they
    do not hold the answer; scores base and tuned on held-out questions."""
    from eval.cli import cache_index
    from eval.report import print_table
    from llm_finetune.finetune import LlmFinetuneJob, finetune_generator
    from llm_finetune.model import LoraSettings
    from llm_finetune.train import TrainSettings
    from rag.cli import run_guarded
    from rag.settings import load_settings

    if data is None and index is None:
        raise typer.BadParameter("pass --data QA_FILE, or --index DIR to write questions from its chunks")
    settings = run_guarded(lambda: load_settings(index=index))
    if index is None:
        settings.index = cache_index("llm", data.resolve().stem, settings)
    job = LlmFinetuneJob(
        out=out,
        data=data,
        pdfs=pdfs,
        synthetic=synthetic,
        question_style=question_style,
        teacher_url=teacher_url,
        base=base,
        test_fraction=test_fraction,
        refusal_fraction=refusal_fraction,
        eval_limit=eval_limit,
        max_tokens=max_tokens,
        quantize=quantize,
        resume=resume,
        lora=LoraSettings(rank, alpha, dropout, [m.strip() for m in target_modules.split(",") if m.strip()]),
        train=TrainSettings(epochs=epochs, batch_size=batch_size, learning_rate=lr, max_steps=max_steps),
    )
    results = run_guarded(lambda: finetune_generator(job, settings))
    console.print(results["comparison"].rich)
    print_table("tuned", results["after"], console)
    console.print(
        f"adapter: {results['adapter']} ({results['method']}); training "
        f"{results['timings']['train_s']:.0f} s, total {results['timings']['total_s']:.0f} s",
        highlight=False,
    )


def export_merged(
    adapter: Annotated[Path, typer.Argument(help="Adapter directory from rag finetune-llm")],
    out: Annotated[Path, typer.Option(help="Directory for the merged full weights")],
    base: Annotated[str | None, typer.Option(help="Base model (default: the one it was tuned from)")] = None,
) -> None:
    """Merge a LoRA adapter into its base and write full weights that transformers loads alone."""
    from llm_finetune.finetune import export_merged as run_export
    from rag.cli import run_guarded

    path = run_guarded(lambda: run_export(adapter, out, base))
    console.print(f"merged weights written to {path}", highlight=False)


def register(app: typer.Typer) -> None:
    app.command("finetune-llm")(finetune_llm)
    app.command("export-merged")(export_merged)
