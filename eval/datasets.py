"""Readers of the data sets that `rag eval` scores on and the fine-tuning packages train on, and
the indexing of a text corpus (a BEIR corpus, SQuAD contexts) as one-page documents.

- BEIR (`corpus.jsonl`, `queries.jsonl`, `qrels/SPLIT.tsv`): `load_beir`;
- SQuAD v1.1 JSON (e.g. XQuAD): `load_squad`, its contexts a corpus of one page each;
- PDF questions in JSONL (the FinanceBench `qa.jsonl` format): `load_questions`, and
  `page_qrels` for the chunks of an index that cover their evidence pages;
- either question file with its corpus indexed: `load_and_index`.

Both question readers give the same record: {"id", "question", "references": [answers],
"evidence": [{"doc": FILE_OR_CONTEXT_NAME, "page": 1-BASED}]}.
"""

from __future__ import annotations

import csv
import json
import re
from pathlib import Path

from indexes import text_hash
from rag.embedding import Embedder
from rag.ingest import IngestReport, ingest, update_index
from rag.settings import Settings
from rag.sources import Source


def load_beir(directory: Path, split: str) -> tuple[dict[str, str], dict[str, str], dict]:
    """(corpus id -> text, query id -> text, qrels) for one split."""
    directory = Path(directory)
    qrels_path = directory / "qrels" / f"{split}.tsv"
    for needed in (directory / "corpus.jsonl", directory / "queries.jsonl", qrels_path):
        if not needed.is_file():
            raise FileNotFoundError(f"not a BEIR dataset: {needed} is missing")
    corpus = {}
    with open(directory / "corpus.jsonl") as f:
        for line in f:
            doc = json.loads(line)
            corpus[str(doc["_id"])] = (doc.get("title", "") + " " + doc["text"]).strip()
    qrels: dict[str, dict[str, int]] = {}
    with open(qrels_path) as f:
        for row in csv.DictReader(f, delimiter="\t"):
            if int(row["score"]) > 0:
                qrels.setdefault(str(row["query-id"]), {})[str(row["corpus-id"])] = int(row["score"])
    queries = {}
    with open(directory / "queries.jsonl") as f:
        for line in f:
            q = json.loads(line)
            if str(q["_id"]) in qrels:
                queries[str(q["_id"])] = q["text"]
    return corpus, queries, qrels


def load_squad(path: Path) -> tuple[dict[str, str], list[dict]]:
    """(context name -> text, questions) from a SQuAD v1.1 JSON file; a context is named by its
    article title and paragraph number, and is its questions' evidence (page 1)."""
    try:
        data = json.loads(Path(path).read_text())["data"]
    except (OSError, json.JSONDecodeError, KeyError, TypeError) as err:
        raise ValueError(f"{path}: not a SQuAD JSON file: {err}") from err
    contexts, questions = {}, []
    for article in data:
        # \w, not A-Za-z: a Chinese title (CMRC) must not become "_" and merge its contexts with others
        title = re.sub(r"[^\w-]+", "_", article.get("title", "article"))[:60]
        for number, paragraph in enumerate(article["paragraphs"], 1):
            name = f"{title}-{number}"
            contexts[name] = paragraph["context"]
            for qa in paragraph["qas"]:
                questions.append(
                    {
                        "id": str(qa["id"]),
                        "question": qa["question"],
                        "references": list(dict.fromkeys(a["text"] for a in qa["answers"])),
                        "evidence": [{"doc": name, "page": 1}],
                    }
                )
    if not questions:
        raise ValueError(f"{path}: no questions")
    return contexts, questions


def load_questions(path: Path) -> list[dict]:
    """PDF questions, one JSON object a line: {"id", "question", "answer", "evidence"}; the
    answer becomes the one reference."""
    questions = []
    with open(path) as f:
        for number, line in enumerate(f, 1):
            if not line.strip():
                continue
            try:
                item = json.loads(line)
                item["id"], item["question"] = str(item["id"]), str(item["question"])
                item["evidence"] = [
                    {"doc": str(e["doc"]), "page": int(e["page"])} for e in item.get("evidence", [])
                ]
            except (json.JSONDecodeError, KeyError, TypeError, ValueError) as err:
                raise ValueError(f"{path}:{number}: not a question record: {err}") from err
            item["references"] = [str(item.get("answer", ""))]
            questions.append(item)
    if not questions:
        raise ValueError(f"{path}: no questions")
    return questions


def page_qrels(snapshot, questions: list[dict]) -> dict[str, dict[str, int]]:
    """Question id -> the chunks whose page span covers one of its evidence pages."""
    qrels = {}
    for q in questions:
        relevant = {}
        for e in q["evidence"]:
            for chunk_id in snapshot.records.chunks_covering(e["doc"], e["page"]):
                relevant[chunk_id] = 1
        # a question whose evidence is not indexed can only miss
        qrels[q["id"]] = relevant or {"__evidence_not_indexed__": 1}
    return qrels


def corpus_sources(name: str, corpus: dict[str, str]) -> list[Source]:
    """Each text of `corpus` (id -> text) as a one-page document named by its id."""
    return [
        Source(
            path=f"beir:{name}/{doc_id}",
            name=doc_id,
            sha256=text_hash(text),
            size=len(text),
            load=lambda text=text: [text],
        )
        for doc_id, text in corpus.items()
    ]


def index_corpus(
    name: str,
    corpus: dict[str, str],
    settings: Settings,
    progress: bool = True,
    embedder: Embedder | None = None,
) -> IngestReport:
    """Make the index at `settings.index` hold exactly `corpus` (incrementally: unchanged texts
    cost a hash comparison, texts no longer in it are removed)."""
    return update_index(
        corpus_sources(name, corpus), settings, prune=lambda path: True, progress=progress, embedder=embedder
    )


def load_and_index(
    data: Path, pdfs: Path | None, settings: Settings, progress: bool = True
) -> tuple[list[dict], IngestReport]:
    """The questions of `data` and their corpus, indexed into `settings.index`: a SQuAD JSON
    file's contexts, or for a PDF-QA JSONL file the PDFs in `pdfs`.

    Files indexed from `pdfs` that are gone are pruned, so an index made for this folder (as the
    eval cache is, see eval.cached_index) holds exactly its PDFs.
    """
    data = Path(data)
    if data.suffix == ".json":
        if pdfs is not None:
            raise ValueError(f"{data} is a SQuAD file, whose contexts are the corpus: leave out --pdfs")
        contexts, questions = load_squad(data)
        return questions, index_corpus(data.stem, contexts, settings, progress)
    if pdfs is None:
        raise ValueError(f"{data} is a PDF question file: pass --pdfs, the folder of its PDFs")
    questions = load_questions(data)
    return questions, ingest([Path(pdfs)], settings, prune=True, progress=progress)
