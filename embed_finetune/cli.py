"""`rag finetune-embed` and `rag finetune-rerank`: parse flags, run one job, print the
before/after table."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from rag.terminal import EpochsOpt, LrOpt, MaxStepsOpt, ResumeOpt, run_guarded
from rag.terminal import out as console

# the pair sources both commands train on (embed_finetune.finetune.build_pairs)
IndexSourceOpt = Annotated[
    Path | None, typer.Option("--index", help="Index to train on (synthetic queries, or --qa labels)")
]
BeirOpt = Annotated[Path | None, typer.Option(help="BEIR dataset to train on (its qrels)")]
SplitOpt = Annotated[str, typer.Option(help="BEIR qrels split to train on")]
EvalSplitOpt = Annotated[str, typer.Option(help="BEIR split also scored before/after")]
QaOpt = Annotated[Path | None, typer.Option(help="QA file with evidence pages: its pages are positives")]
SyntheticOpt = Annotated[int, typer.Option(help="Chunks to write synthetic queries for")]
RoundTripOpt = Annotated[int, typer.Option(help="A query must find its chunk in this top k")]
HeldOutOpt = Annotated[float, typer.Option(help="Fraction of queries held out for evaluation")]
EvalQaOpt = Annotated[Path | None, typer.Option(help="Questions scored before/after, never trained on")]


def finetune_embed(
    out: Annotated[Path, typer.Option(help="Directory for the tuned model (with its card and report)")],
    index: IndexSourceOpt = None,
    beir: BeirOpt = None,
    split: SplitOpt = "train",
    eval_split: EvalSplitOpt = "test",
    qa: QaOpt = None,
    synthetic: SyntheticOpt = 2000,
    queries: Annotated[str, typer.Option(help="Synthetic query style: crop (no LLM) or llm")] = "crop",
    query_engine: Annotated[str, typer.Option(help="Generator for llm queries: transformers or openai")] = (
        "transformers"
    ),
    query_model: Annotated[
        str | None, typer.Option(help="Generator model (default: the bundled one)")
    ] = None,
    query_url: Annotated[str | None, typer.Option(help="OpenAI-compatible base URL (e.g. vLLM)")] = None,
    round_trip_k: RoundTripOpt = 10,
    held_out: HeldOutOpt = 0.1,
    eval_qa: EvalQaOpt = None,
    base: Annotated[str | None, typer.Option(help="Model to tune (default: the index's model)")] = None,
    epochs: EpochsOpt = 1.0,
    batch_size: Annotated[int, typer.Option(help="Pairs per batch (in-batch negatives)")] = 32,
    lr: LrOpt = 5e-5,
    loss: Annotated[str, typer.Option(help="mnrl or cached-mnrl (big batches, little memory)")] = "mnrl",
    matryoshka: Annotated[str | None, typer.Option(help="Also train these dimensions, e.g. 256,128")] = None,
    negatives: Annotated[int, typer.Option(help="Hard negatives mined per pair (0: none)")] = 1,
    max_steps: MaxStepsOpt = -1,
    resume: ResumeOpt = False,
) -> None:
    """Tune the embedding model on your documents; report before/after on held-out queries."""
    from embed_finetune.finetune import FinetuneJob, finetune_embedder
    from embed_finetune.train import TrainConfig
    from eval.report import print_table
    from rag.settings import load_settings

    if beir is not None and (index is not None or qa is not None):
        raise typer.BadParameter("--beir trains on the dataset's qrels: leave out --index and --qa")
    if queries not in ("crop", "llm"):
        raise typer.BadParameter("--queries must be crop or llm")
    dims = [int(d) for d in matryoshka.split(",")] if matryoshka else []
    config = TrainConfig(
        epochs=epochs, batch_size=batch_size, learning_rate=lr, max_steps=max_steps,
        loss=loss, matryoshka_dims=dims, negatives=negatives,
    )
    job = FinetuneJob(
        out=out, base=base, beir=beir, split=split, eval_split=eval_split, qa=qa, synthetic=synthetic,
        query_style=queries, round_trip_k=round_trip_k, held_out=held_out, eval_qa=eval_qa,
        resume=resume, config=config,
    )
    settings = run_guarded(lambda: load_settings(index=index))
    generator, concurrency = None, 1
    if beir is None and qa is None and queries == "llm":
        from rag.engines import load_generator
        from rag.generation import DEFAULT_GENERATOR

        generator = run_guarded(
            lambda: load_generator(query_engine, query_model or DEFAULT_GENERATOR, query_url)
        )
        concurrency = 8 if query_engine == "openai" else 1  # a server batches concurrent requests
    result = run_guarded(lambda: finetune_embedder(job, settings, generator, concurrency))
    console.print(result.comparison.rich)
    print_table("after", result.after, console)
    console.print(
        f"model: {result.out}\nreport: {result.comparison.path}\n"
        f"training {result.train.seconds:.0f} s, total {result.timings['total_s']:.0f} s; "
        f"use it with: rag reindex --model {result.out}",
        highlight=False,
    )


def finetune_rerank(
    out: Annotated[Path, typer.Option(help="Directory for the cross-encoder (with its card and report)")],
    index: IndexSourceOpt = None,
    beir: BeirOpt = None,
    split: SplitOpt = "train",
    eval_split: EvalSplitOpt = "test",
    qa: QaOpt = None,
    synthetic: SyntheticOpt = 2000,
    round_trip_k: RoundTripOpt = 10,
    held_out: HeldOutOpt = 0.1,
    eval_qa: EvalQaOpt = None,
    base: Annotated[
        str | None, typer.Option(help="Encoder or cross-encoder to start from (default: bundled MiniLM)")
    ] = None,
    epochs: EpochsOpt = 1.0,
    batch_size: Annotated[int, typer.Option(help="(query, passage) pairs per batch")] = 16,
    lr: LrOpt = 5e-5,
    negatives: Annotated[int, typer.Option(help="Negatives per query, from its top hybrid results")] = 7,
    max_steps: MaxStepsOpt = -1,
) -> None:
    """Train a cross-encoder reranker on your documents; report retrieval with and without it."""
    from embed_finetune.rerank import RerankConfig, RerankJob, finetune_reranker
    from eval.report import print_table
    from rag.settings import load_settings

    if beir is not None and (index is not None or qa is not None):
        raise typer.BadParameter("--beir trains on the dataset's qrels: leave out --index and --qa")
    config = RerankConfig(
        epochs=epochs, batch_size=batch_size, learning_rate=lr, negatives=negatives, max_steps=max_steps
    )
    job = RerankJob(
        out=out, base=base, beir=beir, split=split, eval_split=eval_split, qa=qa, synthetic=synthetic,
        round_trip_k=round_trip_k, held_out=held_out, eval_qa=eval_qa, config=config,
    )
    settings = run_guarded(lambda: load_settings(index=index))
    result = run_guarded(lambda: finetune_reranker(job, settings))
    console.print(result.comparison.rich)
    print_table("with the reranker", result.after, console)
    console.print(
        f"model: {result.out}\nreport: {result.comparison.path}\n"
        f"training {result.train.seconds:.0f} s, total {result.timings['total_s']:.0f} s; reranking costs "
        f"{result.rerank_ms_per_query:.0f} ms per query; use it with: rag search --rerank {result.out}",
        highlight=False,
    )


def register(app: typer.Typer) -> None:
    app.command("finetune-embed")(finetune_embed)
    app.command("finetune-rerank")(finetune_rerank)
