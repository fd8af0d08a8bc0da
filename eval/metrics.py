"""Ranking metrics through ranx, so the figures match what the IR community computes."""

from __future__ import annotations

from ranx import Qrels, Run, evaluate

NO_RESULT = "__no_result__"  # ranx needs every query in the run; an empty ranking scores zero


def ranking_metrics(
    qrels: dict[str, dict[str, int]], rankings: dict[str, list[str]], metrics: list[str]
) -> tuple[dict[str, float], dict[str, dict[str, float]]]:
    """Mean and per-query figures for ranked id lists against graded relevance judgements.

    Args:
        qrels: query id -> {relevant id: relevance grade}.
        rankings: query id -> ids, best first (only queries in `qrels` are scored).
        metrics: ranx names, e.g. "ndcg@10", "recall@100", "mrr@10", "hit_rate@5".
    """
    qrels = {q: rel for q, rel in qrels.items() if rel}
    run: dict[str, dict[str, float]] = {}
    for query in qrels:
        ids = list(dict.fromkeys(rankings.get(query, [])))  # first occurrence keeps its rank
        run[query] = {doc: float(len(ids) - rank) for rank, doc in enumerate(ids)} or {NO_RESULT: 0.0}
    qrels_obj, run_obj = Qrels(qrels), Run(run)
    means = evaluate(qrels_obj, run_obj, metrics, make_comparable=True)
    if isinstance(means, float):
        means = {metrics[0]: means}
    per_query = {q: {m: float(run_obj.scores[m][q]) for m in metrics} for q in run}
    return {m: float(v) for m, v in means.items()}, per_query
