"""The question's language, for the few words ragstack itself writes into an answer: the refusal,
the "Sources:" heading, and the request to answer in that language (made only for questions
not in English, so that English prompts stay as measured).

Told by script alone, which is what matters here: kana is Japanese, hangul Korean, Han
characters without either Chinese; anything else is answered as English.
"""

from __future__ import annotations

import re

_HAN = re.compile("[\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff]")
_KANA = re.compile("[\u3040-\u30ff]")
_HANGUL = re.compile("[\uac00-\ud7af]")

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
