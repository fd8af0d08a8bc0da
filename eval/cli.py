"""`rag eval ...`: parse flags, run one evaluation, write results.json, print the table."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from eval.report import print_table, run_dir, write_report, write_results
from rag.embedding import resolve_precision
from rag.retrieval import MODES
from rag.settings import Settings, load_settings

eval_app = typer.Typer(help="Evaluate retrieval and answers; compare runs.", no_args_is_help=True)
console = Console()


def cache_index(kind: str, name: str, settings: Settings) -> Path:
    """A reusable index per dataset and settings, so a second eval costs no embedding."""
    cache = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "ragstack" / "eval"
    slug = settings.model.replace("/", "_")
    backend = settings.embed_backend
    if backend == "torch":  # bf16 and fp32 vectors differ (slightly): keep their indexes apart
        backend += "-" + resolve_precision(settings.embed_precision)
    return cache / f"{kind}-{name}-{slug}-{backend}-c{settings.chunk_size}-o{settings.chunk_overlap}"


def _modes(mode: str | None) -> list[str]:
    if mode is None or mode == "all":
        return list(MODES)
    if mode not in MODES:
        raise typer.BadParameter(f"mode must be one of {', '.join(MODES)} or all")
    return [mode]


ModeOpt = Annotated[str | None, typer.Option(help="dense, bm25, hybrid or all (default)")]
IndexOpt = Annotated[Path | None, typer.Option(help="Index directory (default: a cache)")]
ModelOpt = Annotated[str | None, typer.Option(help="Embedding model")]
ChunkOpt = Annotated[int | None, typer.Option(help="Tokens per chunk")]
BackendOpt = Annotated[str | None, typer.Option(help="torch or onnx-int8")]
OutOpt = Annotated[Path | None, typer.Option(help="Run directory (default runs/KIND-TIME)")]
JudgeOpt = Annotated[
    str | None,
    typer.Option(
        help="LLM judge for ragas metrics: transformers (the embedded model) or openai (with --judge-url); "
        "off by default"
    ),
]
JudgeModelOpt = Annotated[str | None, typer.Option(help="Judge model (default: the generator's)")]
JudgeUrlOpt = Annotated[str | None, typer.Option(help="OpenAI-compatible base URL of the judge (e.g. vLLM)")]


EngineOpt = Annotated[str | None, typer.Option(help="Generator engine: transformers (default) or openai")]
LlmOpt = Annotated[str | None, typer.Option("--llm", help="Generator model")]
AnswerModeOpt = Annotated[str | None, typer.Option(help="Retrieval mode: dense, bm25 or hybrid (default)")]
LimitOpt = Annotated[int | None, typer.Option(help="Only the first N questions")]


def load_generators(settings: Settings, judge: str | None, judge_model: str | None, judge_url: str | None):
    """(the answering generator, the judge generator or None) for `rag eval qa` and `rag eval squad`."""
    from rag.generation import load_generator

    if judge not in (None, "transformers", "openai"):
        raise ValueError(f"unknown judge {judge!r}; choose transformers or openai")
    generator = load_generator(
        settings.engine, settings.llm_model, settings.llm_base_url, settings.llm_api_key
    )
    if judge is None:
        return generator, None
    return generator, load_generator(
        judge, judge_model or settings.llm_model, judge_url, settings.llm_api_key
    )


def _run(kind: str, dataset: Path, flags: dict, evaluate, title) -> None:
    """The shared shape of an eval command: settings, a cached index, results, a table."""
    from rag.cli import run_guarded

    index = flags.pop("index")
    out = flags.pop("out")
    settings = run_guarded(lambda: load_settings(**flags))
    settings.index = index or cache_index(kind, dataset.resolve().name, settings)
    results = run_guarded(lambda: evaluate(settings))
    directory = run_dir(out, kind)
    path = write_results(directory, results)
    report = write_report(directory, results, title(results))
    print_table(title(results), results["figures"], console)
    for group, counts in results.get("nan_counts", {}).items():
        console.print(f"NaN ({group}): " + ", ".join(f"{m} {n}" for m, n in counts.items()))
    console.print(f"results: {path}\nreport: {report}")


@eval_app.command("retrieval")
def retrieval(
    beir: Annotated[Path, typer.Option(help="BEIR dataset directory")],
    split: Annotated[str, typer.Option(help="qrels split: test, dev or train")] = "test",
    mode: ModeOpt = None,
    index: IndexOpt = None,
    model: ModelOpt = None,
    chunk_size: ChunkOpt = None,
    embed_backend: BackendOpt = None,
    out: OutOpt = None,
) -> None:
    """nDCG@10, Recall@{1,5,10,100} and MRR@10 on a BEIR dataset."""
    from eval.beir import evaluate_beir

    modes = _modes(mode)
    flags = dict(index=index, out=out, model=model, chunk_size=chunk_size, embed_backend=embed_backend)
    _run(
        "retrieval",
        beir,
        flags,
        lambda settings: evaluate_beir(beir, split, modes, settings),
        lambda results: f"{beir.name} {split} ({results['queries']} queries)",
    )


@eval_app.command("pdfqa")
def pdfqa(
    qa_file: Annotated[Path, typer.Argument(help="Questions with evidence pages (JSONL)")],
    pdfs: Annotated[Path, typer.Option(help="Folder of the PDFs the questions are about")],
    mode: ModeOpt = None,
    index: IndexOpt = None,
    model: ModelOpt = None,
    chunk_size: ChunkOpt = None,
    embed_backend: BackendOpt = None,
    out: OutOpt = None,
) -> None:
    """Page hit@{1,5,10} and page-level MRR@10 on PDF questions."""
    from eval.pdfqa import evaluate_pdfqa

    modes = _modes(mode)
    flags = dict(index=index, out=out, model=model, chunk_size=chunk_size, embed_backend=embed_backend)
    _run(
        "pdfqa",
        pdfs,
        flags,
        lambda settings: evaluate_pdfqa(qa_file, pdfs, modes, settings),
        lambda results: f"{qa_file.name} ({results['questions']} questions)",
    )


@eval_app.command("qa")
def qa(
    qa_file: Annotated[
        Path, typer.Argument(help="Questions with reference answers and evidence pages (JSONL)")
    ],
    pdfs: Annotated[Path, typer.Option(help="Folder of the PDFs the questions are about")],
    index: IndexOpt = None,
    engine: EngineOpt = None,
    llm_model: LlmOpt = None,
    mode: AnswerModeOpt = None,
    limit: LimitOpt = None,
    judge: JudgeOpt = None,
    judge_model: JudgeModelOpt = None,
    judge_url: JudgeUrlOpt = None,
    out: OutOpt = None,
) -> None:
    """Answer every question end to end; page hits, EM, F1, ROUGE-L, citation precision/recall,
    and with --judge ragas's faithfulness, answer relevancy, context precision and recall."""
    from eval.qa import evaluate_qa

    def evaluate(settings: Settings) -> dict:
        generator, judge_generator = load_generators(settings, judge, judge_model, judge_url)
        return evaluate_qa(qa_file, pdfs, settings, generator, limit=limit, judge=judge_generator)

    flags = dict(index=index, out=out, engine=engine, llm_model=llm_model, mode=mode)
    _run("qa", pdfs, flags, evaluate, lambda results: f"{qa_file.name} ({results['questions']} questions)")


@eval_app.command("squad")
def squad(
    squad_file: Annotated[Path, typer.Argument(help="SQuAD v1.1 JSON (e.g. xquad.en.json)")],
    index: IndexOpt = None,
    engine: EngineOpt = None,
    llm_model: LlmOpt = None,
    mode: AnswerModeOpt = None,
    limit: LimitOpt = None,
    judge: JudgeOpt = None,
    judge_model: JudgeModelOpt = None,
    judge_url: JudgeUrlOpt = None,
    out: OutOpt = None,
) -> None:
    """The contexts become the corpus; each question is answered from all of it and scored."""
    from eval.squad import evaluate_squad

    def evaluate(settings: Settings) -> dict:
        generator, judge_generator = load_generators(settings, judge, judge_model, judge_url)
        return evaluate_squad(squad_file, settings, generator, limit=limit, judge=judge_generator)

    flags = dict(index=index, out=out, engine=engine, llm_model=llm_model, mode=mode)
    _run(
        "squad",
        squad_file,
        flags,
        evaluate,
        lambda results: f"{squad_file.name} ({results['questions']} questions)",
    )


@eval_app.command("compare")
def compare(
    run_a: Annotated[Path, typer.Argument(help="Run directory (or its results.json): the baseline")],
    run_b: Annotated[Path, typer.Argument(help="Run directory: the change")],
    out: Annotated[
        Path | None, typer.Option(help="Where to write the table (default RUN_B/compare.md)")
    ] = None,
) -> None:
    """Side-by-side figures of two runs with deltas, printed and written as Markdown + JSON."""
    from eval.compare import compare_runs
    from rag.cli import run_guarded

    table = run_guarded(lambda: compare_runs(run_a, run_b, out))
    console.print(table.rich)
    console.print(f"written: {table.path}")


def register(app: typer.Typer) -> None:
    app.add_typer(eval_app, name="eval")
