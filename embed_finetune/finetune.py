"""`rag finetune-embed` end to end: pairs -> held-out split -> mined negatives -> training ->
before/after evaluation on the held-out queries -> the model saved with its card and report.

Evaluation runs the real retrieval path: the base model's index against a copy re-embedded with
the tuned model (`rag.reindex`), in dense and hybrid mode.
"""

from __future__ import annotations

import shutil
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

from rich.console import Console

from embed_finetune.pairs import PairSet, beir_pairs, qa_pairs
from embed_finetune.split import split_held_out
from embed_finetune.synthetic import drop_duplicates, round_trip_filter, synthetic_pairs
from embed_finetune.train import TrainConfig, TrainResult, load_model, train
from eval.cached_index import cache_index
from eval.compare import Comparison
from eval.datasets import index_corpus, load_beir, load_questions, page_qrels
from eval.metrics import ranking_metrics
from eval.model_card import save_finetune, write_before_after
from eval.report import index_settings
from indexes import IndexStore
from rag.reindex import reindex
from rag.retrieval import Retriever
from rag.settings import Settings

console = Console(stderr=True)
EVAL_MODES = ("dense", "hybrid")
DOC_METRICS = ["ndcg@10", "recall@10", "recall@100", "mrr@10"]
CHUNK_METRICS = ["hit_rate@1", "hit_rate@5", "hit_rate@10", "mrr@10", "ndcg@10"]


@dataclass
class FinetuneJob:
    """What `rag finetune-embed` was asked to do.

    Args:
        out: the tuned model's directory (its card, report and checkpoints go there too).
        beir, split: train on a BEIR dataset's qrels split; `eval_split` (e.g. test) is also
            scored before and after when the dataset has it.
        qa: train on a QA file's evidence pages (with the index in `settings.index`).
        synthetic: with an index and no labels, write queries for this many sampled chunks
            (`query_style` crop or llm), keep those that pass the round trip (top `round_trip_k`).
        held_out: fraction of the queries set aside for the before/after evaluation.
        eval_qa: a question file scored before and after (page hits), never trained on.
    """

    out: Path
    base: str | None = None
    beir: Path | None = None
    split: str = "train"
    eval_split: str | None = "test"
    qa: Path | None = None
    synthetic: int = 2000
    query_style: str = "crop"
    round_trip_k: int = 10
    held_out: float = 0.1
    eval_qa: Path | None = None
    resume: bool = False
    seed: int = 0
    config: TrainConfig = field(default_factory=TrainConfig)


@dataclass
class FinetuneResult:
    """What a `rag finetune-embed` job made and measured.

    Args:
        out: the tuned model's directory.
        source, source_stats: what the training pairs were made from, and counts along the way.
        before, after: figures (row -> metric -> value) of the base and the tuned model.
        comparison: the same side by side, as `rag eval compare` writes it.
    """

    base_model: str
    out: Path
    source: str
    source_stats: dict
    training_pairs: int
    training_queries: int
    held_out_queries: int
    held_out_query_ids: list[str]
    config: TrainConfig
    train: TrainResult
    before: dict[str, dict[str, float]]
    after: dict[str, dict[str, float]]
    timings: dict[str, float]
    comparison: Comparison

    def card_facts(self) -> list[str]:
        """The model card's lines on the base model, the data and the training."""
        config, trained = self.config, self.train
        matryoshka = f" + Matryoshka {config.matryoshka_dims}" if config.matryoshka_dims else ""
        return [
            f"- Base model: `{self.base_model}`",
            f"- Training data: {self.source}; {self.training_pairs} pairs from {self.training_queries} "
            f"queries; {trained.examples} trained on with {trained.negatives} mined negative(s) each (the "
            "miner drops pairs it finds no safe negative for)",
            f"- Held out (never trained on): {self.held_out_queries} queries",
            f"- Loss: {config.loss}{matryoshka}; {config.epochs} epoch(s), batch {config.batch_size}, "
            f"learning rate {config.learning_rate}, {trained.steps} steps",
            f"- Training wall time: {trained.seconds:.0f} s "
            f"({trained.seconds / max(config.epochs, 1e-9):.0f} s per epoch)",
            "",
            "Before -> after (ragstack's own retrieval: chunks of 200 tokens, FAISS, BM25 for hybrid):",
        ]


def build_pairs(job: FinetuneJob, settings: Settings, generator=None, concurrency: int = 1) -> PairSet:
    """The training pairs of the job's source."""
    if job.beir is not None:
        return beir_pairs(job.beir, job.split)
    with IndexStore(settings.index).open() as snapshot:
        if job.qa is not None:
            return qa_pairs(job.qa, snapshot)
        chunks = snapshot.records.all_chunks()
    doc_of = {c.chunk_id: c.doc for c in chunks}
    made = synthetic_pairs(
        {c.chunk_id: c.text for c in chunks},
        job.synthetic,
        job.query_style,
        generator,
        doc_of=doc_of.get,
        concurrency=concurrency,
        seed=job.seed,
    )
    return round_trip_filter(drop_duplicates(made), Retriever(settings.index), k=job.round_trip_k)


def _score(
    retriever: Retriever, queries: dict[str, str], qrels: dict, by: str, metrics: list[str], modes
):
    """Figures and per-query figures per mode; `by` folds results to "doc" or "chunk_id"."""
    ids = list(queries)
    figures, per_query = {}, {}
    for mode in modes:
        results = retriever.search_batch([queries[q] for q in ids], k=100, mode=mode)
        rankings = {q: [getattr(r, by) for r in hits] for q, hits in zip(ids, results, strict=True)}
        figures[mode], per_query[mode] = ranking_metrics(qrels, rankings, metrics)
    return figures, per_query


def evaluate(
    job: FinetuneJob,
    settings: Settings,
    held_out: PairSet,
    model: str,
    index: Path,
    reranker=None,
    modes: tuple[str, ...] = EVAL_MODES,
) -> dict:
    """Held-out figures (and eval-split / eval-QA figures) for the index at `index`, searched
    in `modes`, through `reranker` when given (rag finetune-rerank)."""
    retriever = Retriever(index, reranker=reranker)
    snapshot = retriever.snapshot()
    by = "doc" if job.beir is not None else "chunk_id"
    metrics = DOC_METRICS if job.beir is not None else CHUNK_METRICS
    figures, per_query = {}, {}
    found, per = _score(retriever, held_out.queries(), held_out.qrels(), by, metrics, modes)
    for mode in modes:
        figures[f"held-out {mode}"] = found[mode]
        per_query[f"held-out {mode}"] = per[mode]
    if job.beir is not None and job.eval_split and job.eval_split != job.split:
        if (Path(job.beir) / "qrels" / f"{job.eval_split}.tsv").is_file():
            _, queries, qrels = load_beir(job.beir, job.eval_split)
            found, _ = _score(retriever, queries, qrels, "doc", DOC_METRICS, modes)
            figures.update({f"{job.eval_split} {mode}": found[mode] for mode in modes})
    if job.eval_qa is not None:
        questions = load_questions(job.eval_qa)
        qrels = page_qrels(snapshot, questions)
        found, _ = _score(
            retriever,
            {q["id"]: q["question"] for q in questions},
            qrels,
            "chunk_id",
            ["hit_rate@1", "hit_rate@5", "hit_rate@10", "mrr@10"],
            modes,
        )
        figures.update({f"{Path(job.eval_qa).stem} page {mode}": found[mode] for mode in modes})
    return {
        "kind": "embed-finetune-eval",
        "model": model,
        "figures": figures,
        "per_query": per_query,
        "queries": len(held_out.queries()),
        "settings": {**index_settings(settings, snapshot.manifest), "model": model},
    }


def _base_index(job: FinetuneJob, settings: Settings, base: str) -> Path:
    """An index made with the base model: the user's own, or the BEIR corpus's in the eval cache."""
    if job.beir is None:
        return settings.index
    corpus, _, _ = load_beir(job.beir, job.split)
    base_settings = settings.model_copy(update={"model": base})
    # the same cached index `rag eval retrieval` uses: a second run costs no embedding
    index = cache_index("retrieval", job.beir, base_settings)
    index_corpus(Path(job.beir).name, corpus, base_settings.model_copy(update={"index": index}))
    return index


def finetune_embedder(
    job: FinetuneJob, settings: Settings, generator=None, concurrency: int = 1
) -> FinetuneResult:
    """Run the whole job: the tuned model, its card and its report are written to `job.out`."""
    started = time.perf_counter()
    job.config.check()
    out = Path(job.out)
    out.mkdir(parents=True, exist_ok=True)
    report_dir = out / "eval"
    if job.beir is None and not job.base:
        with IndexStore(settings.index).open() as snapshot:
            base = snapshot.manifest.model
    else:
        base = job.base or settings.model
    timings: dict[str, float] = {}

    tick = time.perf_counter()
    console.print("building training pairs ...")
    pair_set = build_pairs(job, settings, generator, concurrency)
    train_set, held_out = split_held_out(pair_set, job.held_out, seed=job.seed)
    timings["pairs_s"] = time.perf_counter() - tick
    console.print(
        f"{len(train_set.pairs)} training pairs ({len(train_set.queries())} queries), "
        f"{len(held_out.queries())} held-out queries"
    )

    work = Path(tempfile.mkdtemp(prefix="ragstack-finetune-", dir=out))
    try:
        tick = time.perf_counter()
        base_index = _base_index(job, settings, base)
        timings["base_index_s"] = time.perf_counter() - tick
        before = evaluate(job, settings, held_out, base, base_index)

        model = load_model(base, job.config.max_seq_length)
        trained = train(model, train_set.pairs, pair_set.corpus, out, job.config, resume=job.resume)
        model.save(str(out))
        timings["train_s"] = trained.seconds

        tick = time.perf_counter()
        tuned_index = work / "index-tuned"
        reindex(settings.model_copy(update={"index": base_index}), str(out), target=tuned_index)
        timings["reindex_s"] = time.perf_counter() - tick
        after = evaluate(job, settings, held_out, str(out.resolve()), tuned_index)
    finally:
        shutil.rmtree(work, ignore_errors=True)

    comparison = write_before_after(report_dir, ("base", before), ("tuned", after))
    timings["total_s"] = time.perf_counter() - started
    result = FinetuneResult(
        base_model=base,
        out=out.resolve(),
        source=pair_set.source,
        source_stats=pair_set.extra,
        training_pairs=len(train_set.pairs),
        training_queries=len(train_set.queries()),
        held_out_queries=len(held_out.queries()),
        held_out_query_ids=sorted(held_out.queries()),
        config=job.config,
        train=trained,
        before=before["figures"],
        after=after["figures"],
        timings=timings,
        comparison=comparison,
    )
    usage = "Use it: `rag reindex --model THIS_DIR` (or `rag ingest --model THIS_DIR` into a new index)."
    save_finetune(out, result, usage)
    shutil.rmtree(out / "checkpoints", ignore_errors=True)  # done: nothing left to resume
    shutil.rmtree(out / "train-data", ignore_errors=True)
    shutil.rmtree(out / "mining-cache", ignore_errors=True)
    return result
