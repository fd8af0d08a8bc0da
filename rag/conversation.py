"""Multi-turn conversations: sessions kept in a store (rag.sessions), and follow-ups rewritten as
standalone questions before retrieval ("and in 2022?" -> "What was 3M's capital expenditure in 2022?").
"""

from __future__ import annotations

import re
from collections.abc import Iterator

from rag.engines import close_generator
from rag.generation import Generator, Message, generate
from rag.prompt_budget import PER_MESSAGE, fit_prompt, prompt_budget, token_counter
from rag.sessions import SessionStore

REWRITE_PROMPT = (
    "Rewrite the follow-up question as one standalone question that can be understood without "
    "the conversation. Keep names, years and numbers. Reply with the question only."
)
REWRITE_EXAMPLE = [  # one worked example: small models copy a pattern better than they follow rules
    {
        "role": "user",
        "content": "Conversation:\nuser: Who founded the Red Cross?\nassistant: Henry Dunant "
        "founded it in 1863.\n\nFollow-up: where was he born?\n\nStandalone question:",
    },
    {"role": "assistant", "content": "Where was Henry Dunant, the founder of the Red Cross, born?"},
]
HISTORY_TURNS = 3  # question/answer pairs the rewrite and the answer see
REWRITE_TOKENS = 48  # a standalone question is short


def rewrite_query(generator: Generator | None, history: list[Message], follow_up: str) -> str:
    """A standalone form of `follow_up`; the follow-up itself when there is no history.

    The model's rewrite is used when it looks like a question about the same thing: non-empty,
    one line, not much longer than the conversation, sharing a word with the follow-up or the
    history. Otherwise (or without a generator) the fallback is the last user question with the
    follow-up appended, which keeps the earlier subject in the query for retrieval. A question
    on a new subject (_new_subject) is searched as it is: merged with the history, an off-topic
    question borrowed the earlier subject's sources and was answered from them.
    """
    if not history or _new_subject(follow_up, history):
        return follow_up
    last_question = next((m["content"] for m in reversed(history) if m["role"] == "user"), "")
    fallback = f"{last_question} {follow_up}".strip()
    if generator is None:
        return fallback
    messages, transcript = _rewrite_messages(generator, history[-2 * HISTORY_TURNS :], follow_up)
    try:
        rewrite = generate(generator, messages, max_tokens=REWRITE_TOKENS).strip().strip('"').strip()
    except Exception:  # noqa: BLE001 - a failed rewrite must not fail the turn
        return fallback
    return rewrite if _usable(rewrite, follow_up, transcript) else fallback


def _rewrite_messages(
    generator: Generator, history: list[Message], follow_up: str
) -> tuple[list[Message], str]:
    """The rewrite prompt within the generator's context, and its transcript: the oldest turns
    are cut first, then the follow-up is truncated to its start (rag.prompt_budget.fit_prompt)."""

    def prompt(transcript: str, question: str) -> list[Message]:
        content = f"Conversation:\n{transcript}\n\nFollow-up: {question}\n\nStandalone question:"
        return [{"role": "system", "content": REWRITE_PROMPT}, {"role": "user", "content": content}]

    count = token_counter(generator)
    fixed = sum(count(m["content"]) + PER_MESSAGE for m in prompt("", ""))
    budget = prompt_budget(generator, REWRITE_TOKENS) - fixed
    lines = [{"role": m["role"], "content": f"{m['role']}: {m['content']}\n"} for m in history]
    follow_up, _, kept = fit_prompt(follow_up, [], lines, budget, count)
    transcript = "".join(m["content"] for m in kept).rstrip("\n")
    return prompt(transcript, follow_up), transcript


def _usable(rewrite: str, follow_up: str, transcript: str) -> bool:
    """A one-line question that keeps the follow-up's numbers and invents none."""
    if not rewrite or "\n" in rewrite or not rewrite.endswith("?") or len(rewrite) > 2 * len(follow_up) + 200:
        return False
    numbers = lambda s: set(re.findall(r"\d+(?:[.,]\d+)?", s))  # noqa: E731
    if not numbers(follow_up) <= numbers(rewrite) or not numbers(rewrite) <= numbers(follow_up) | numbers(
        transcript
    ):
        return False
    own = _content_words(follow_up)
    if own and len(own & _content_words(rewrite)) * 2 < len(own):
        return False  # it dropped what the follow-up asks about
    return bool(_content_words(rewrite) & _content_words(transcript))  # it kept the earlier subject


_QUESTION_WORDS = {
    "what",
    "about",
    "which",
    "when",
    "where",
    "there",
    "that",
    "this",
    "with",
    "from",
    "were",
    "does",
    "have",
    "then",
    "they",
    "their",
    "your",
    "would",
    "could",
    "should",
}


# words that point back into the conversation ("what was it in 2021?")
_ANAPHORA = {"it", "its", "they", "them", "their", "theirs", "this", "that", "these", "those", "he",
             "him", "his", "she", "her", "hers", "there", "then", "same", "also", "too", "above"}


def _new_subject(follow_up: str, history: list[Message]) -> bool:
    """A question that stands on its own: three or more content words, none of them in the
    conversation, and no word that points back into it."""
    own = _content_words(follow_up)
    words = set(re.findall(r"[a-z]+", follow_up.lower()))
    earlier = _content_words(" ".join(m["content"] for m in history))
    return len(own) >= 3 and not own & earlier and not words & _ANAPHORA


def _content_words(text: str) -> set[str]:
    return {w for w in re.findall(r"[a-z]+", text.lower()) if len(w) > 3 and w not in _QUESTION_WORDS}


class Chat:
    """Questions in a session: rewrite the follow-up, answer it, remember both turns.

    Args:
        answerer: rag.answer.Answerer.
        sessions: where conversations live; None keeps nothing between calls.
        rewrite: rewrite follow-ups with the answerer's generator (else the simple fallback).
    """

    def __init__(self, answerer, sessions: SessionStore | None = None, rewrite: bool = True):
        self.answerer = answerer
        self.sessions = sessions
        self.rewrite = rewrite

    def turn(
        self, question: str, session_id: str | None = None, history: list[Message] | None = None, **options
    ) -> ChatTurn:
        """One turn; `history` (e.g. the messages of an OpenAI request) is used when given, else the
        session's. Iterate the turn to stream it; `.answer` is set and the session updated at the end."""
        if history is None and session_id is not None and self.sessions is not None:
            history = self.sessions.messages(session_id, HISTORY_TURNS)
        history = (history or [])[-2 * HISTORY_TURNS :]
        generator = self.answerer.generator if self.rewrite else None
        query = rewrite_query(generator, history, question)
        # the standalone query carries the context: small models answer better without old turns
        return ChatTurn(self, session_id, self.answerer.stream(question, query=query, **options))

    def ask(self, question: str, session_id: str | None = None, **options):
        turn = self.turn(question, session_id, **options)
        for _ in turn:
            pass
        return turn.answer

    def close(self) -> None:
        """Stop a vLLM the generator started and close the session file."""
        close_generator(self.answerer.generator)
        if self.sessions is not None:
            self.sessions.close()


class ChatTurn:
    def __init__(self, chat: Chat, session_id: str | None, stream):
        self.chat, self.session_id, self._stream = chat, session_id, stream
        self.answer = None

    def __iter__(self) -> Iterator[str]:
        yield from self._stream
        self.answer = self._stream.answer
        sessions = self.chat.sessions
        if sessions is not None and self.session_id is not None:
            sessions.append(self.session_id, "user", self.answer.question)
            sessions.append(
                self.session_id,
                "assistant",
                self.answer.text,
                _kept(self.answer),
            )


_SOURCE_FIELDS = ("doc", "page_start", "page_end", "text")


def _kept(answer) -> dict:
    """What a session keeps of an answer beside its text: the rewritten query, whether the
    documents held an answer, the citations, and the cited sources' texts (so that a reopened
    conversation can still show where each citation's passage lies on its page)."""
    cited = {c.n for c in answer.citations}
    sources = [
        {"n": n, "score": s.score, **{k: v for k, v in s.to_dict().items() if k in _SOURCE_FIELDS}}
        for n, s in enumerate(answer.sources, 1)
        if n in cited
    ]
    return {
        "query": answer.query,
        "found": answer.found,
        "citations": [c.to_dict() for c in answer.citations],
        "sources": sources,
    }


def open_chat(
    settings, generator: Generator | None = None, retriever=None, sessions: SessionStore | None = None
) -> Chat:
    """The Chat the settings describe: their index, generator engine and session file (or the
    open `sessions` given)."""
    from rag.answer import Answerer
    from rag.engines import open_generator
    from rag.retrieval import Retriever

    retriever = retriever or Retriever.from_settings(settings)
    generator = generator or open_generator(settings)
    answerer = Answerer.from_settings(retriever, generator, settings)
    return Chat(answerer, sessions or open_session_store(settings))


def open_session_store(settings) -> SessionStore:
    """The conversations of `settings`' collection: in PostgreSQL when `state_url` names one
    (shared by several servers), else in the collection's SQLite file."""
    from rag.sessions_postgres import PostgresSessionStore, is_postgres_url

    if is_postgres_url(settings.state_url):
        return PostgresSessionStore(settings.state_url, scope=settings.collection or "default")
    return SessionStore(settings.sessions)
