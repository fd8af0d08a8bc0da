"""`rag finetune-llm` and `rag export-merged`: parse flags, run one job, print the figures."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from rag.generation import DEFAULT_GENERATOR
from rag.terminal import EpochsOpt, LrOpt, MaxStepsOpt, ResumeOpt, run_guarded
from rag.terminal import out as console


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
        DEFAULT_GENERATOR
    ),
    epochs: EpochsOpt = 1.0,
    max_steps: MaxStepsOpt = -1,
    batch_size: Annotated[int, typer.Option(help="Examples per step")] = 4,
    lr: LrOpt = 2e-4,
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
    resume: ResumeOpt = False,
) -> None:
    """QLoRA-tune the generator to answer from sources with [n] citations and to refuse when they
    do not hold the answer; scores base and tuned on held-out questions."""
    from eval.cached_index import cache_index
    from eval.report import print_table
    from llm_finetune.finetune import FinetuneJob, finetune_generator
    from llm_finetune.model import LoraSettings
    from llm_finetune.train import TrainConfig
    from rag.settings import load_settings

    if data is None and index is None:
        raise typer.BadParameter("pass --data QA_FILE, or --index DIR to write questions from its chunks")
    settings = run_guarded(lambda: load_settings(index=index))
    if index is None:  # the index `rag eval qa` caches for the same data: made once for both
        settings.index = cache_index("qa", pdfs or data, settings)
    modules = [m.strip() for m in target_modules.split(",") if m.strip()]
    job = FinetuneJob(
        out=out, data=data, pdfs=pdfs, synthetic=synthetic, question_style=question_style,
        teacher_url=teacher_url, base=base, test_fraction=test_fraction, refusal_fraction=refusal_fraction,
        eval_limit=eval_limit, max_tokens=max_tokens, quantize=quantize, resume=resume,
        lora=LoraSettings(rank, alpha, dropout, modules),
        config=TrainConfig(epochs=epochs, batch_size=batch_size, learning_rate=lr, max_steps=max_steps),
    )
    result = run_guarded(lambda: finetune_generator(job, settings))
    console.print(result.comparison.rich)
    print_table("tuned", result.after, console)
    console.print(
        f"adapter: {result.out} ({result.method}); training "
        f"{result.train.seconds:.0f} s, total {result.timings['total_s']:.0f} s",
        highlight=False,
    )


def export_merged(
    adapter: Annotated[Path, typer.Argument(help="Adapter directory from rag finetune-llm")],
    out: Annotated[Path, typer.Option(help="Directory for the merged full weights")],
    base: Annotated[str | None, typer.Option(help="Base model (default: the one it was tuned from)")] = None,
) -> None:
    """Merge a LoRA adapter into its base and write full weights that transformers loads alone."""
    from llm_finetune.finetune import export_merged as run_export

    path = run_guarded(lambda: run_export(adapter, out, base))
    console.print(f"merged weights written to {path}", highlight=False)


def register(app: typer.Typer) -> None:
    app.command("finetune-llm")(finetune_llm)
    app.command("export-merged")(export_merged)
