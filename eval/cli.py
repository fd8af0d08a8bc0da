"""`rag eval ...`: parse flags, run one evaluation, write results.json, print the table."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Annotated

import typer

from eval.cached_index import cache_index
from eval.report import print_table, run_dir, write_report, write_results
from rag.retrieval import MODES
from rag.settings import Settings, load_settings
from rag.terminal import RerankOpt, run_guarded
from rag.terminal import out as console

eval_app = typer.Typer(help="Evaluate retrieval and answers; compare runs.", no_args_is_help=True)


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
BackendOpt = Annotated[str | None, typer.Option(help="auto (default), torch or onnx-int8")]
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
    """(the answering generator, the judge generator or None) for `rag eval qa`."""
    from rag.engines import load_generator

    if judge not in (None, "transformers", "openai"):
        raise ValueError(f"unknown judge {judge!r}; choose transformers or openai")
    generator = load_generator(
        settings.engine, settings.llm_model, settings.llm_base_url, settings.llm_api_key,
        grounded=settings.grounded_decoding, precision=settings.llm_precision,
    )
    if judge is None:
        return generator, None
    return generator, load_generator(
        judge, judge_model or settings.llm_model, judge_url, settings.llm_api_key
    )


def _run(
    kind: str,
    corpus: Path,
    label: str,
    evaluate: Callable[[Settings], dict],
    index: Path | None,
    out: Path | None,
    **flags,
) -> None:
    """The shared shape of an eval command: settings, an index (by default the cached one of
    `corpus`), results, a report, a table."""
    settings = run_guarded(lambda: load_settings(**flags))
    settings.index = index or cache_index(kind, corpus, settings)
    results = run_guarded(lambda: evaluate(settings))
    count = f"{results['queries']} queries" if "queries" in results else f"{results['questions']} questions"
    title = f"{label} ({count})"
    directory = run_dir(out, kind)
    path = write_results(directory, results)
    report = write_report(directory, results, title)
    print_table(title, results["figures"], console)
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
    rerank: RerankOpt = None,
    corpus_sample: Annotated[
        int | None,
        typer.Option(help="Index only the relevant documents and others drawn up to N (a quick check)"),
    ] = None,
    out: OutOpt = None,
) -> None:
    """nDCG@10, Recall@{1,5,10,100} and MRR@10 on a BEIR dataset."""
    from eval.beir import evaluate_beir

    modes = _modes(mode)
    # a sample's cached index is its own: indexing it prunes the rest of the corpus
    kind = "retrieval" if corpus_sample is None else f"retrieval-sample{corpus_sample}"
    _run(
        kind, beir, f"{beir.name} {split}",
        lambda settings: evaluate_beir(beir, split, modes, settings, corpus_sample=corpus_sample),
        index, out, model=model, chunk_size=chunk_size, embed_backend=embed_backend, reranker=rerank,
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
    rerank: RerankOpt = None,
    out: OutOpt = None,
) -> None:
    """Page hit@{1,5,10} and page-level MRR@10 on PDF questions."""
    from eval.pdfqa import evaluate_pdfqa

    modes = _modes(mode)
    _run(
        "pdfqa", pdfs, qa_file.name,
        lambda settings: evaluate_pdfqa(qa_file, pdfs, modes, settings),
        index, out, model=model, chunk_size=chunk_size, embed_backend=embed_backend, reranker=rerank,
    )


@eval_app.command("qa")
def qa(
    data: Annotated[
        Path,
        typer.Argument(
            help="Questions with reference answers: PDF questions with evidence pages (JSONL, with "
            "--pdfs), or SQuAD v1.1 JSON (e.g. xquad.en.json), whose contexts become the corpus"
        ),
    ],
    pdfs: Annotated[Path | None, typer.Option(help="Folder of the PDFs a JSONL file is about")] = None,
    index: IndexOpt = None,
    engine: EngineOpt = None,
    llm_model: LlmOpt = None,
    mode: AnswerModeOpt = None,
    limit: LimitOpt = None,
    judge: JudgeOpt = None,
    judge_model: JudgeModelOpt = None,
    judge_url: JudgeUrlOpt = None,
    rerank: RerankOpt = None,
    out: OutOpt = None,
) -> None:
    """Answer every question end to end; page hits, EM, F1, ROUGE-L, citation precision/recall,
    and with --judge ragas's faithfulness, answer relevancy, context precision and recall."""
    from eval.qa import evaluate_qa

    def evaluate(settings: Settings) -> dict:
        generator, judge_generator = load_generators(settings, judge, judge_model, judge_url)
        return evaluate_qa(data, settings, generator, pdfs=pdfs, limit=limit, judge=judge_generator)

    _run(
        "qa", pdfs or data, data.name, evaluate, index, out,
        engine=engine, llm_model=llm_model, mode=mode, reranker=rerank,
    )


# `rag eval squad FILE` was a command of its own before `rag eval qa` read SQuAD files too
eval_app.command("squad", hidden=True)(qa)


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

    table = run_guarded(lambda: compare_runs(run_a, run_b, out))
    console.print(table.rich)
    console.print(f"written: {table.path}")


def register(app: typer.Typer) -> None:
    app.add_typer(eval_app, name="eval")
