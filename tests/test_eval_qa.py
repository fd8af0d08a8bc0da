"""`rag eval qa` end to end through the CLI (real MiniLM and SmolLM2), its report, and compare."""

import json
from pathlib import Path

from conftest import rag_cli

QUESTIONS = [
    {
        "id": "q1",
        "question": "What was Acme's revenue in 2021?",
        "answer": "4.2 billion dollars",
        "evidence": [{"doc": "acme_2021.pdf", "page": 2}],
    },
    {
        "id": "q2",
        "question": "What was Acme's capital expenditure in 2021?",
        "answer": "310 million dollars",
        "evidence": [{"doc": "acme_2021.pdf", "page": 3}],
    },
    {
        "id": "q3",
        "question": "What was Acme's revenue in 2022?",
        "answer": "5.1 billion dollars",
        "evidence": [{"doc": "acme_2022.pdf", "page": 2}],
    },
]


def rag(*args: str, tmp_path: Path):
    return rag_cli(*args, env={"RAG_SESSIONS": str(tmp_path / "s.sqlite")}, timeout=900)


def test_eval_qa_report_and_compare(reports: Path, tmp_path: Path) -> None:
    qa = tmp_path / "qa.jsonl"
    qa.write_text("\n".join(json.dumps(q) for q in QUESTIONS) + "\n")
    index = tmp_path / "index"
    first = rag(
        "eval",
        "qa",
        str(qa),
        "--pdfs",
        str(reports),
        "--index",
        str(index),
        "--out",
        str(tmp_path / "a"),
        tmp_path=tmp_path,
    )
    assert first.returncode == 0, first.stderr
    results = json.loads((tmp_path / "a" / "results.json").read_text())
    assert results["questions"] == 3 and results["settings"]["generator"] == "SmolLM2-135M-Instruct"
    retrieval = results["figures"]["retrieval (hybrid)"]
    assert retrieval["hit_rate@10"] == 1.0  # every evidence page is among the top 10 chunks
    answers = results["figures"]["answers"]
    assert set(answers) == {"exact_match", "f1", "rouge_l", "citation_precision", "citation_recall"}
    assert all(0.0 <= v <= 1.0 for v in answers.values() if v == v)
    # precision is undefined (NaN) exactly for the answers that cite nothing, and is counted
    uncited = sum(1 for r in results["per_question"] if not r["cited"])
    assert results["nan_counts"]["answers"]["citation_precision"] == uncited
    for row in results["per_question"]:
        assert row["answer"] and row["page_hit@10"] == 1.0
    report = (tmp_path / "a" / "report.md").read_text()
    assert "| exact_match | f1 | rouge_l | citation_precision | citation_recall |" in report
    assert "NaN (answers" in report and "| page hit@10 |" not in report.split("## Per question")[0]
    assert "## Per question (3)" in report and "What was Acme's revenue in 2022?" in report
    for png in ("curves.png", "figures.png", "scores.png"):
        assert (tmp_path / "a" / png).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"

    second = rag(
        "eval",
        "qa",
        str(qa),
        "--pdfs",
        str(reports),
        "--index",
        str(index),
        "--out",
        str(tmp_path / "b"),
        "--mode",
        "bm25",
        "--limit",
        "2",
        tmp_path=tmp_path,
    )
    assert second.returncode == 0, second.stderr
    compared = rag("eval", "compare", str(tmp_path / "a"), str(tmp_path / "b"), tmp_path=tmp_path)
    assert compared.returncode == 0, compared.stderr
    table = json.loads((tmp_path / "b" / "compare.json").read_text())
    f1 = next(r for r in table["rows"] if r["row"] == "answers" and r["metric"] == "f1")
    assert abs(f1["delta"] - (f1["b"] - f1["a"])) < 1e-12
    assert table["settings_changed"] == {"mode": ["hybrid", "bm25"]}
    assert any(r["row"] == "retrieval (bm25)" for r in table["rows"])
    assert "delta" in (tmp_path / "b" / "compare.md").read_text()
    missing = rag("eval", "compare", str(tmp_path / "a"), str(tmp_path / "nope"), tmp_path=tmp_path)
    assert missing.returncode == 2 and "no results.json" in missing.stderr


def test_eval_qa_on_squad_indexes_the_contexts(tmp_path: Path) -> None:
    squad = {
        "version": "1.1",
        "data": [
            {
                "title": "Koalas",
                "paragraphs": [
                    {
                        "context": "Koalas sleep up to twenty hours a day. They eat eucalyptus "
                        "leaves, which are poor in energy.",
                        "qas": [
                            {
                                "id": "k1",
                                "question": "How long do koalas sleep each day?",
                                "answers": [
                                    {"text": "up to twenty hours", "answer_start": 13},
                                    {"text": "twenty hours", "answer_start": 19},
                                ],
                            }
                        ],
                    }
                ],
            },
            {
                "title": "Volcanoes",
                "paragraphs": [
                    {
                        "context": "Mount Etna in Sicily is one of the most active volcanoes in the world.",
                        "qas": [
                            {
                                "id": "v1",
                                "question": "Where is Mount Etna?",
                                "answers": [{"text": "Sicily", "answer_start": 14}],
                            }
                        ],
                    }
                ],
            },
        ],
    }
    path = tmp_path / "tiny-squad.json"
    path.write_text(json.dumps(squad))
    done = rag(
        "eval",
        "qa",
        str(path),
        "--index",
        str(tmp_path / "index"),
        "--out",
        str(tmp_path / "run"),
        tmp_path=tmp_path,
    )
    assert done.returncode == 0, done.stderr
    results = json.loads((tmp_path / "run" / "results.json").read_text())
    assert results["documents"] == 2 and results["questions"] == 2
    assert results["figures"]["retrieval (hybrid)"]["hit_rate@1"] == 1.0  # each question finds its paragraph
    rows = {r["id"]: r for r in results["per_question"]}
    assert rows["k1"]["evidence"] == [{"doc": "Koalas-1", "page": 1}]
    assert rows["k1"]["reference"] == "up to twenty hours | twenty hours"
    assert (tmp_path / "run" / "report.md").is_file()
    bad = tmp_path / "bad.json"
    bad.write_text("[1, 2]")
    # `rag eval squad` is the command's former name
    failed = rag("eval", "squad", str(bad), "--index", str(tmp_path / "index2"), tmp_path=tmp_path)
    assert failed.returncode == 2 and "not a SQuAD JSON file" in failed.stderr


class Unparsable:
    """A stand-in judge for a plumbing test: it never writes the JSON ragas asks for, as small local
    judges often do not. Answers come from the real SmolLM2."""

    name = "unparsable-judge"

    def __init__(self):
        self.calls = 0

    def stream(self, messages, max_tokens=256, temperature=0.0):
        self.calls += 1
        yield "I am not sure what you mean."


def test_ragas_nans_from_an_unparsable_judge_are_counted(
    reports, settings, embedder, generator, tmp_path: Path
) -> None:
    from eval.qa import score_questions
    from eval.report import write_report
    from rag.ingest import ingest

    ingest([reports], settings, progress=False, embedder=embedder)
    questions = [{**q, "references": [q["answer"]]} for q in QUESTIONS[:2]]
    judge = Unparsable()
    results = score_questions(questions, settings, generator, progress=False, judge=judge)
    assert judge.calls > 0  # ragas really asked the judge
    assert set(results["figures"]["judge"]) == {
        "faithfulness",
        "answer_relevancy",
        "context_precision",
        "context_recall",
    }
    for metric, count in results["nan_counts"]["judge"].items():
        values = [row[f"judge:{metric}"] for row in results["per_question"]]
        assert count == sum(v != v for v in values), metric  # every NaN counted, none hidden
        if count == len(values):
            assert results["figures"]["judge"][metric] != results["figures"]["judge"][metric]  # NaN, not 0
    assert results["nan_counts"]["judge"]["faithfulness"] == 2  # nothing parsable: all undefined
    # the report's per-question rows carry the judge's scores, NaN written as such
    report = write_report(tmp_path, {"kind": "qa", **results}, "judged").read_text()  # as evaluate_qa
    lines = report.splitlines()
    at = next(i for i, line in enumerate(lines) if line.startswith("| id | question"))
    assert lines[at].endswith("| F1 | faithfulness | answer relevancy | context precision | context recall |")
    question_rows = lines[at + 2 : at + 4]
    assert [row.removesuffix(" |").split(" | ")[-4] for row in question_rows] == ["NaN", "NaN"]
