"""A SQuAD-format question file from a folder of plain-text or reStructuredText files, for tuning
the generator on text whose licence lets the tuned model be shared (the bundled adapter's data:
rag/adapters/README.md).

Each file is an article; its prose paragraphs (headings, directives, code and tables left out;
reST roles and links reduced to their words) are grouped into contexts of about `context_words`
words, and each context gets up to `per_context` cloze questions (llm_finetune.synthetic.cloze_pair:
a sentence with a figure or a name taken out, the span its answer), so `rag finetune-llm --data`
takes it as it takes SQuAD:

    python -m llm_finetune.text_corpus /usr/share/doc/python3.11/html/_sources corpus.json
"""

from __future__ import annotations

import argparse
import json
import random
import re
from pathlib import Path

from llm_finetune.synthetic import cloze_pair, grounded

_UNDERLINE = re.compile(r"^([=\-~^\"'`#*+.:_])\1{2,}\s*$")
_ROLE = re.compile(r":[\w:.-]+:`(?:~|!)?([^`<]*?)(?:\s*<[^>]*>)?`")
_LINK = re.compile(r"`([^`<]+?)\s*<[^>]*>`_{1,2}")
_MARKUP = re.compile(r"``|\*\*|(?<!\w)\*(?=\w)|(?<=\w)\*(?!\w)|`_{0,2}|\|")
_FOOTNOTE = re.compile(r"\s*\[[#*\d\w-]*\]_")


def prose_paragraphs(text: str) -> list[str]:
    """The running-text paragraphs of a reST or plain-text file, markup reduced to its words."""
    paragraphs, current = [], []
    lines = text.splitlines() + [""]
    for line, nxt in zip(lines, lines[1:] + [""], strict=True):
        # a blank or indented line (code, quotes, directive bodies), a directive or comment (".."),
        # a heading or its underline, a list item or a table row ends the paragraph
        ends = (
            not line.strip() or line[:1].isspace() or line.startswith("..")
            or _UNDERLINE.match(line) or _UNDERLINE.match(nxt)
            or line.startswith(("+-", "|", "* ", "- ", "#. ")) or re.match(r"\d+\.\s", line)
        )
        if ends:
            if current:
                paragraphs.append(" ".join(current))
            current = []
        else:  # "as follows::" introduces a code block: the sentence ends with ":"
            current.append(line.strip().removesuffix("::") + (":" if line.rstrip().endswith("::") else ""))
    cleaned = []
    for paragraph in paragraphs:
        words = _MARKUP.sub("", _FOOTNOTE.sub("", _LINK.sub(r"\1", _ROLE.sub(r"\1", paragraph))))
        words = " ".join(words.split())
        if len(words.split()) >= 12 and words[-1:] in ".:!?)":
            cleaned.append(words)
    return cleaned


def contexts_of(paragraphs: list[str], context_words: int = 150) -> list[str]:
    """Consecutive paragraphs joined up to about `context_words` words (SQuAD's passage size)."""
    contexts, current = [], []
    for paragraph in paragraphs:
        if current and sum(len(p.split()) for p in current) + len(paragraph.split()) > context_words:
            contexts.append("\n".join(current))
            current = []
        current.append(paragraph)
    if current:
        contexts.append("\n".join(current))
    return contexts


def build_corpus(
    folder: Path, context_words: int = 150, per_context: int = 2, seed: int = 0
) -> dict:
    """SQuAD v1.1 JSON ({"data": [articles]}) with cloze questions over the folder's files."""
    rng = random.Random(seed)
    articles = []
    for path in sorted(p for p in folder.rglob("*") if p.is_file() and p.suffix in {".txt", ".rst"}):
        paragraphs = []
        contexts = contexts_of(prose_paragraphs(path.read_text(errors="replace")), context_words)
        for number, context in enumerate(contexts):
            qas, asked = [], set()
            for attempt in range(per_context * 3):
                pair = cloze_pair(context, rng)
                if pair is None or pair[0] in asked or not grounded(pair[1], context):
                    continue
                asked.add(pair[0])
                qas.append(
                    {
                        "id": f"{path.relative_to(folder).as_posix()}-{number}-{attempt}",
                        "question": pair[0],
                        "answers": [{"text": pair[1], "answer_start": max(context.find(pair[1]), 0)}],
                    }
                )
                if len(qas) == per_context:
                    break
            if qas:
                paragraphs.append({"context": context, "qas": qas})
        if paragraphs:
            title = path.relative_to(folder).as_posix().removesuffix(".txt").removesuffix(".rst")
            articles.append({"title": title, "paragraphs": paragraphs})
    return {"version": "1.1", "data": articles}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("folder", type=Path, help="folder of .txt / .rst files (searched recursively)")
    parser.add_argument("out", type=Path, help="SQuAD-format JSON to write")
    parser.add_argument("--context-words", type=int, default=150)
    parser.add_argument("--per-context", type=int, default=2)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    if not args.folder.is_dir():
        parser.error(f"{args.folder} is not a folder")
    corpus = build_corpus(args.folder, args.context_words, args.per_context, args.seed)
    questions = sum(len(p["qas"]) for a in corpus["data"] for p in a["paragraphs"])
    if not questions:
        parser.error(f"{args.folder}: no prose paragraphs with a figure or a name to ask about")
    args.out.write_text(json.dumps(corpus, ensure_ascii=False, indent=1))
    print(f"{len(corpus['data'])} articles, {questions} questions -> {args.out}")


if __name__ == "__main__":
    main()
