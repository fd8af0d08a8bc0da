"""The question's language, for the few words ragstack itself writes into an answer: the refusal,
the "Sources:" heading, and the request to answer in that language (made only for questions
not in English, so that English prompts stay as measured).

Told by script alone, which is what matters here: kana is Japanese, hangul Korean, Han
characters without either Chinese; anything else is answered as English.
"""

from __future__ import annotations

import re
from pathlib import Path

from indexes.words import HAN, HANGUL, KANA

_HAN = re.compile(f"[{HAN}]")
_KANA = re.compile(f"[{KANA}]")
_HANGUL = re.compile(f"[{HANGUL}]")

NOT_FOUND = {
    "en": "The documents do not contain an answer to this question.",
    "zh": "文档中没有这个问题的答案。",
    "ja": "文書にはこの質問の答えがありません。",
    "ko": "문서에 이 질문에 대한 답이 없습니다.",
}
SOURCES = {"en": "Sources:", "zh": "来源：", "ja": "出典：", "ko": "출처:"}
_ANSWER_IN = {
    "zh": "Answer in Chinese (用中文回答).",
    "ja": "Answer in Japanese (日本語で答えてください).",
    "ko": "Answer in Korean (한국어로 답하세요).",
}


def language_of(text: str) -> str:
    """"ja", "ko", "zh" or "en", by the scripts in `text`."""
    if _KANA.search(text):
        return "ja"
    if _HANGUL.search(text):
        return "ko"
    return "zh" if _HAN.search(text) else "en"


def not_found(question: str) -> str:
    """The refusal, in the question's language."""
    return NOT_FOUND[language_of(question)]


def sources_heading(question: str) -> str:
    return SOURCES[language_of(question)]


def answer_in(question: str) -> str:
    """An instruction to answer in the question's language; "" for English."""
    return _ANSWER_IN.get(language_of(question), "")


def declared_languages(model_path: str) -> frozenset[str] | None:
    """The languages a model's card (README.md front matter, `language:`) says it was trained
    on: a local directory's, or a hub model's cached card; None when there is no card or it names
    none (then the model is trusted with every language)."""
    card = Path(model_path) / "README.md"
    if not card.is_file():
        try:
            from huggingface_hub import try_to_load_from_cache

            cached = try_to_load_from_cache(model_path, "README.md")
        except Exception:  # noqa: BLE001 - not a hub id, no cache: no card
            return None
        if not isinstance(cached, str):
            return None
        card = Path(cached)
    front = re.match(r"---\n(.*?)\n---", card.read_text(errors="replace"), re.DOTALL)
    if front is None:
        return None
    import yaml

    try:
        declared = (yaml.safe_load(front.group(1)) or {}).get("language")
    except yaml.YAMLError:
        return None
    names = [declared] if isinstance(declared, str) else declared if isinstance(declared, list) else []
    return frozenset(str(n).lower() for n in names) or None


def model_reads(languages: frozenset[str] | None, text: str) -> bool:
    """Whether a model whose card declares `languages` reads `text` (by its script, see
    language_of): every model reads English; an undeclared or multilingual one reads all."""
    language = language_of(text)
    return language == "en" or languages is None or "multilingual" in languages or language in languages
