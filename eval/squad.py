"""SQuAD-format answer evaluation (e.g. XQuAD): the contexts become the corpus, one single-page
document each (named by the article title and paragraph number), and every question is answered
from the whole corpus; its evidence is page 1 of its own context.
"""

from __future__ import annotations

import json
import re
import time
from pathlib import Path

from eval.beir import corpus_sources
from eval.qa import score_questions
from rag.generation import Generator
from rag.ingest import update_index
from rag.settings import Settings


def load_squad(path: Path) -> tuple[dict[str, str], list[dict]]:
    """(context name -> text, questions with references and evidence) from a SQuAD v1.1 JSON file."""
    try:
        data = json.loads(Path(path).read_text())["data"]
    except (OSError, json.JSONDecodeError, KeyError, TypeError) as err:
        raise ValueError(f"{path}: not a SQuAD JSON file: {err}") from err
    contexts, questions = {}, []
    for article in data:
        title = re.sub(r"[^A-Za-z0-9_-]+", "_", article.get("title", "article"))[:60]
        for number, paragraph in enumerate(article["paragraphs"], 1):
            name = f"{title}-{number}"
            contexts[name] = paragraph["context"]
            for qa in paragraph["qas"]:
                references = list(dict.fromkeys(a["text"] for a in qa["answers"]))
                questions.append(
                    {
                        "id": str(qa["id"]),
                        "question": qa["question"],
                        "references": references,
                        "evidence": [{"doc": name, "page": 1}],
                    }
                )
    if not questions:
        raise ValueError(f"{path}: no questions")
    return contexts, questions


def evaluate_squad(
    path: Path,
    settings: Settings,
    generator: Generator,
    limit: int | None = None,
    progress: bool = True,
    judge: Generator | None = None,
) -> dict:
    contexts, questions = load_squad(path)
    started = time.perf_counter()
    update_index(corpus_sources(Path(path).stem, contexts), settings, prune=lambda p: True, progress=progress)
    ingest_seconds = time.perf_counter() - started
    results = score_questions(questions[:limit], settings, generator, progress, judge)
    results["timings"]["ingest_s"] = ingest_seconds
    return {"kind": "qa", "dataset": str(path), "contexts": len(contexts), **results}
