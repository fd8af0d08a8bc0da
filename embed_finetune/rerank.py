"""`rag finetune-rerank`: a cross-encoder trained on the pairs `rag finetune-embed` makes.

pairs -> held-out split -> negatives mined from what retrieval itself ranks high -> training with
`CrossEncoderTrainer` -> before/after on the held-out queries (retrieval alone, then retrieval
with the reranker over its top RERANK_DEPTH) -> the model saved with its card and report.

Negatives come from the index's own hybrid search, not from a fresh embedding of the corpus:
they are the look-alike chunks the reranker will have to tell apart at query time, and mining
costs one search per query instead of encoding the whole corpus again.
"""

from __future__ import annotations

import random
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path

from rich.console import Console

from embed_finetune.finetune import FinetuneJob, _base_index, build_pairs, evaluate
from embed_finetune.pairs import PairSet
from embed_finetune.split import split_held_out
from embed_finetune.train import TrainResult
from eval.compare import Comparison
from eval.model_card import save_finetune, write_before_after
from indexes import contextual_text
from rag.embedding import DEFAULT_MODEL, resolve_model, resolve_precision
from rag.loading import has_cuda, model_loading
from rag.reranker import MAX_LENGTH, RERANK_DEPTH, Reranker
from rag.retrieval import Retriever
from rag.settings import Settings

console = Console(stderr=True)
EVAL_MODES = ("hybrid",)  # the default mode; each mode costs a cross-encoder pass per query
COST_QUERIES = 20  # held-out queries timed one at a time for the reranker's cost


@dataclass
class RerankConfig:
    """How to train the cross-encoder.

    Args:
        negatives: non-relevant chunks per training query, drawn at random from its first
            `mine_depth` hybrid results (the candidates the reranker will see).
        max_length: tokens of query + passage the model reads.
        precision: "auto" trains in bf16 autocast on CPUs with native bfloat16, else fp32.
    """

    epochs: float = 1.0
    batch_size: int = 16
    learning_rate: float = 5e-5
    warmup_ratio: float = 0.1
    negatives: int = 7
    mine_depth: int = RERANK_DEPTH
    max_length: int = MAX_LENGTH
    precision: str = "auto"
    save_steps: int = 100
    max_steps: int = -1
    seed: int = 42

    def check(self) -> None:
        if self.negatives < 1:
            raise ValueError("a reranker needs at least one negative per query")
        if self.mine_depth <= self.negatives:
            raise ValueError(f"mine_depth ({self.mine_depth}) must exceed negatives ({self.negatives})")


@dataclass
class RerankJob(FinetuneJob):
    """A `rag finetune-rerank` job: the pair sources of FinetuneJob; `base` is the model the
    cross-encoder starts from (default: the bundled MiniLM's weights)."""

    config: RerankConfig = field(default_factory=RerankConfig)


@dataclass
class RerankResult:
    """What a `rag finetune-rerank` job made and measured (the figures: `before` is retrieval
    alone, `after` the same retrieval with the trained reranker)."""

    base_model: str
    out: Path
    source: str
    training_queries: int
    training_examples: int
    held_out_queries: int
    held_out_query_ids: list[str]
    config: RerankConfig
    train: TrainResult
    before: dict[str, dict[str, float]]
    after: dict[str, dict[str, float]]
    rerank_ms_per_query: float
    timings: dict[str, float]
    comparison: Comparison

    def card_facts(self) -> list[str]:
        config, trained = self.config, self.train
        return [
            f"- Cross-encoder started from: `{self.base_model}`",
            f"- Training data: {self.source}; {self.training_queries} queries, {trained.examples} "
            f"(query, passage, label) examples: its relevant chunks and {config.negatives} others, "
            f"from the query's first {config.mine_depth} hybrid results",
            f"- Held out (never trained on): {self.held_out_queries} queries",
            f"- Loss: binary cross-entropy (positives weighted by negatives/positives); {config.epochs} "
            f"epoch(s), batch {config.batch_size}, learning rate {config.learning_rate}, "
            f"{trained.steps} steps",
            f"- Training wall time: {trained.seconds:.0f} s",
            f"- Cost at query time: {self.rerank_ms_per_query:.0f} ms per query to rerank the top "
            f"{RERANK_DEPTH} on this machine",
            "",
            "Before -> after (hybrid retrieval alone -> the same with this reranker over its top "
            f"{RERANK_DEPTH}):",
        ]


def training_examples(
    train_set: PairSet, retriever: Retriever, by: str, config: RerankConfig, progress: bool = True
) -> dict[str, list]:
    """(query, passage, label) columns: per query, its relevant chunks among its first
    `mine_depth` hybrid results as positives (else its pairs' own texts) and `negatives` of the
    others. Both are read as the reranker reads them at query time, a chunk with its document's
    header: positives written otherwise (a BEIR document whole, where the candidates are chunks)
    teach the model to tell the two formats apart instead of relevance."""
    snap = retriever.snapshot()
    headers = {d.name: d.header for d in snap.documents()}
    doc_of = {c.chunk_id: c.doc for c in snap.records.all_chunks()} if by == "chunk_id" else {}
    queries, relevant = train_set.queries(), train_set.qrels()
    own: dict[str, list[tuple[str, str]]] = {}
    for pair in train_set.pairs:
        doc = doc_of.get(pair.positive_id, pair.positive_id)
        own.setdefault(pair.query_id, []).append((doc, pair.positive))
    ids = list(queries)
    found = retriever.search_batch([queries[q] for q in ids], k=config.mine_depth, mode="hybrid")
    rng = random.Random(config.seed)
    rows: dict[str, list] = {"query": [], "passage": [], "label": []}

    def add(query: str, doc: str, text: str, label: float) -> None:
        rows["query"].append(query)
        rows["passage"].append(contextual_text(headers.get(doc, ""), text))
        rows["label"].append(label)

    for query_id, results in zip(ids, found, strict=True):
        hits = [r for r in results if getattr(r, by) in relevant[query_id]]
        for doc, text in [(r.doc, r.text) for r in hits] or own.get(query_id, []):
            add(queries[query_id], doc, text, 1.0)
        others = [r for r in results if getattr(r, by) not in relevant[query_id]]
        for r in rng.sample(others, min(config.negatives, len(others))):
            add(queries[query_id], r.doc, r.text, 0.0)
    return rows


def train_reranker(base: str, rows: dict[str, list], out: Path, config: RerankConfig) -> TrainResult:
    """Train a cross-encoder from `base` on `rows`; saved to `out`."""
    import torch
    from datasets import Dataset
    from sentence_transformers import CrossEncoder
    from sentence_transformers.cross_encoder import CrossEncoderTrainer, CrossEncoderTrainingArguments
    from sentence_transformers.cross_encoder.losses import BinaryCrossEntropyLoss

    config.check()
    with model_loading:
        model = CrossEncoder(resolve_model(base), num_labels=1, max_length=config.max_length,
                             device=None if has_cuda() else "cpu")
    dataset = Dataset.from_dict(rows).shuffle(seed=config.seed)
    args = CrossEncoderTrainingArguments(
        output_dir=str(out / "checkpoints"),
        num_train_epochs=config.epochs,
        max_steps=config.max_steps,
        per_device_train_batch_size=config.batch_size,
        learning_rate=config.learning_rate,
        warmup_ratio=config.warmup_ratio,
        bf16=resolve_precision(config.precision) == "bf16",
        save_strategy="steps",
        save_steps=config.save_steps,
        save_total_limit=1,
        logging_steps=10,
        report_to="none",
        seed=config.seed,
        use_cpu=not has_cuda(),
    )
    # the negatives outnumber the positives (a query may have several): weighting the positives
    # by the ratio keeps the loss balanced
    ratio = rows["label"].count(0.0) / max(1, rows["label"].count(1.0))
    loss = BinaryCrossEntropyLoss(model, pos_weight=torch.tensor(ratio))
    trainer = CrossEncoderTrainer(model=model, args=args, train_dataset=dataset, loss=loss)
    started = time.perf_counter()
    output = trainer.train()
    model.save_pretrained(str(out))
    return TrainResult(
        steps=output.global_step,
        seconds=time.perf_counter() - started,
        train_loss=float(output.training_loss),
        examples=len(dataset),
        negatives=config.negatives,
        resumed_from=None,
        log=[e for e in trainer.state.log_history if "loss" in e],
    )


def rerank_cost(index: Path, reranker: Reranker, queries: list[str], k: int = 10) -> float:
    """Milliseconds the reranker adds to one hybrid search, one query at a time (as a user asks)."""
    timed = {}
    for name, retriever in (("plain", Retriever(index)), ("reranked", Retriever(index, reranker=reranker))):
        retriever.search(queries[0], k)  # warm-up: first-call allocations are not the cost
        started = time.perf_counter()
        for query in queries:
            retriever.search(query, k)
        timed[name] = (time.perf_counter() - started) / len(queries)
    return 1000 * (timed["reranked"] - timed["plain"])


def finetune_reranker(
    job: RerankJob, settings: Settings, generator=None, concurrency: int = 1
) -> RerankResult:
    """Run the whole job: the cross-encoder, its card and its report are written to `job.out`."""
    started = time.perf_counter()
    job.config.check()
    out = Path(job.out)
    out.mkdir(parents=True, exist_ok=True)
    report_dir = out / "eval"
    base = job.base or DEFAULT_MODEL
    timings: dict[str, float] = {}

    console.print("building training pairs ...")
    pair_set = build_pairs(job, settings, generator, concurrency)
    train_set, held_out = split_held_out(pair_set, job.held_out, seed=job.seed)
    index = _base_index(job, settings, settings.model)
    timings["pairs_s"] = time.perf_counter() - started
    console.print(f"{len(train_set.queries())} training queries, {len(held_out.queries())} held out")

    before = evaluate(job, settings, held_out, "no reranker", index, modes=EVAL_MODES)
    tick = time.perf_counter()
    by = "doc" if job.beir is not None else "chunk_id"
    rows = training_examples(train_set, Retriever(index), by, job.config)
    timings["mining_s"] = time.perf_counter() - tick
    trained = train_reranker(base, rows, out, job.config)
    timings["train_s"] = trained.seconds

    reranker = Reranker(str(out), max_length=job.config.max_length)
    after = evaluate(job, settings, held_out, str(out.resolve()), index, reranker=reranker, modes=EVAL_MODES)
    cost_ms = rerank_cost(index, reranker, list(held_out.queries().values())[:COST_QUERIES])
    comparison = write_before_after(report_dir, ("base", before), ("reranked", after))
    timings["total_s"] = time.perf_counter() - started
    result = RerankResult(
        base_model=base,
        out=out.resolve(),
        source=pair_set.source,
        training_queries=len(train_set.queries()),
        training_examples=len(rows["label"]),
        held_out_queries=len(held_out.queries()),
        held_out_query_ids=sorted(held_out.queries()),
        config=job.config,
        train=trained,
        before=before["figures"],
        after=after["figures"],
        rerank_ms_per_query=cost_ms,
        timings=timings,
        comparison=comparison,
    )
    usage = "Use it: `rag search --rerank THIS_DIR`, `rag ask --rerank THIS_DIR`, or `RAG_RERANKER=THIS_DIR`."
    save_finetune(out, result, usage)
    shutil.rmtree(out / "checkpoints", ignore_errors=True)
    return result
