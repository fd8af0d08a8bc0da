"""LLM-judged answer metrics through ragas: faithfulness, answer relevancy, context precision and
context recall. The judge is any rag.generation generator, reached through the LangChain adapter.

A small local judge often writes output ragas cannot parse, and ragas then gives NaN for that
question and metric: those NaNs are counted per metric and reported, never averaged as zeros.
"""

from __future__ import annotations

import math
import warnings

from rag.generation import OpenAIGenerator
from rag.integrations.langchain import RagstackChatModel, RagstackEmbeddings

JUDGE_METRICS = ["faithfulness", "answer_relevancy", "context_precision", "context_recall"]
_RAGAS_COLUMNS = {  # ragas's result column -> our name
    "faithfulness": "faithfulness",
    "answer_relevancy": "answer_relevancy",
    "llm_context_precision_with_reference": "context_precision",
    "context_recall": "context_recall",
}


def judge_scores(
    samples: list[dict],
    generator,
    embedder,
    max_tokens: int = 512,
    timeout: float = 600,
    progress: bool = True,
) -> list[dict[str, float]]:
    """Per sample {metric: score or NaN}.

    A sample: {"question", "answer", "contexts": [retrieved chunk texts], "reference"}.
    """
    from ragas import EvaluationDataset, evaluate
    from ragas.embeddings import LangchainEmbeddingsWrapper
    from ragas.llms import LangchainLLMWrapper
    from ragas.metrics import (
        Faithfulness,
        LLMContextPrecisionWithReference,
        LLMContextRecall,
        ResponseRelevancy,
    )
    from ragas.run_config import RunConfig

    if not samples:
        return []
    dataset = EvaluationDataset.from_list(
        [
            {
                "user_input": s["question"],
                "response": s["answer"],
                "retrieved_contexts": s["contexts"] or [""],
                "reference": s["reference"],
            }
            for s in samples
        ]
    )
    with warnings.catch_warnings():
        warnings.simplefilter(
            "ignore", DeprecationWarning
        )  # ragas 0.4 marks its LangChain wrappers deprecated
        llm = LangchainLLMWrapper(RagstackChatModel(generator=generator, max_tokens=max_tokens))
        embeddings = LangchainEmbeddingsWrapper(RagstackEmbeddings(embedder))
        result = evaluate(
            dataset,
            metrics=[
                Faithfulness(),
                ResponseRelevancy(),
                LLMContextPrecisionWithReference(),
                LLMContextRecall(),
            ],
            llm=llm,
            embeddings=embeddings,
            raise_exceptions=False,
            show_progress=progress,
            run_config=RunConfig(max_workers=_workers(generator), timeout=int(timeout), max_retries=1),
        )
    frame = result.to_pandas()
    return [
        {ours: _number(row.get(column)) for column, ours in _RAGAS_COLUMNS.items()}
        for row in frame.to_dict("records")
    ]


def _workers(generator) -> int:
    """A server (vLLM) batches concurrent requests, several times the throughput of one stream;
    the embedded judge generates one answer at a time anyway."""
    return 8 if isinstance(generator, OpenAIGenerator) else 1


def _number(value) -> float:
    try:
        number = float(value)
    except (TypeError, ValueError):
        return math.nan
    return number
