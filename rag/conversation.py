"""Multi-turn conversations: sessions stored in SQLite, and follow-ups rewritten as standalone
questions before retrieval ("and in 2022?" -> "What was 3M's capital expenditure in 2022?").
"""

from __future__ import annotations

import json
import re
import sqlite3
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

from rag.engines import close_generator
from rag.generation import Generator, Message, generate
from rag.prompt_budget import PER_MESSAGE, fit_prompt, prompt_budget, token_counter

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
_SESSION_ID = re.compile(r"^[A-Za-z0-9_.:-]{1,128}$")


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


class SessionStore:
    """Conversations by id, in one SQLite file; they survive restarts.

    Example:
        >>> sessions = SessionStore("~/.local/share/ragstack/sessions.sqlite")
        >>> sid = sessions.create()
        >>> sessions.append(sid, "user", "What was the revenue in 2018?")
        >>> sessions.messages(sid)
    """

    def __init__(self, path: str | Path):
        self.path = Path(path).expanduser()
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()
        self._db = sqlite3.connect(self.path, check_same_thread=False, isolation_level=None)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.executescript(
            """
            CREATE TABLE IF NOT EXISTS sessions (id TEXT PRIMARY KEY, created REAL NOT NULL, owner TEXT);
            CREATE TABLE IF NOT EXISTS turns (
                session TEXT NOT NULL REFERENCES sessions(id) ON DELETE CASCADE,
                seq INTEGER NOT NULL, role TEXT NOT NULL, content TEXT NOT NULL,
                extra TEXT, created REAL NOT NULL, PRIMARY KEY (session, seq));
            """
        )
        columns = {row[1] for row in self._db.execute("PRAGMA table_info(sessions)")}
        if "owner" not in columns:  # a file from before sessions had owners
            self._db.execute("ALTER TABLE sessions ADD COLUMN owner TEXT")
        self._db.execute("CREATE INDEX IF NOT EXISTS sessions_owner ON sessions(owner)")

    @staticmethod
    def valid_id(session_id: str) -> bool:
        return bool(_SESSION_ID.match(session_id))

    @classmethod
    def new_id(cls, session_id: str | None = None) -> str:
        """`session_id` if it is a valid one (ValueError if not), else a random one."""
        session_id = session_id or uuid.uuid4().hex
        if not cls.valid_id(session_id):
            raise ValueError("a session id is 1-128 letters, digits or _.:-")
        return session_id

    def create(self, session_id: str | None = None, owner: str | None = None) -> str:
        """A new session (a random id unless one is given) belonging to `owner`, if given."""
        session_id = self.new_id(session_id)
        with self._lock:
            self._db.execute(
                "INSERT OR IGNORE INTO sessions (id, created, owner) VALUES (?, ?, ?)",
                (session_id, time.time(), owner),
            )
        return session_id

    def owned_by(self, session_id: str, owner: str | None) -> bool:
        """Whether the session exists and belongs to `owner` (None: one made without an owner)."""
        with self._lock:
            row = self._db.execute("SELECT owner FROM sessions WHERE id = ?", (session_id,)).fetchone()
        return row is not None and row[0] == owner

    def exists(self, session_id: str) -> bool:
        with self._lock:
            return (
                self._db.execute("SELECT 1 FROM sessions WHERE id = ?", (session_id,)).fetchone() is not None
            )

    def append(self, session_id: str, role: str, content: str, extra: dict | None = None) -> None:
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                self._db.execute(
                    "INSERT OR IGNORE INTO sessions (id, created) VALUES (?, ?)", (session_id, time.time())
                )
                (seq,) = self._db.execute(
                    "SELECT COALESCE(MAX(seq), 0) + 1 FROM turns WHERE session = ?", (session_id,)
                ).fetchone()
                self._db.execute(
                    "INSERT INTO turns VALUES (?, ?, ?, ?, ?, ?)",
                    (session_id, seq, role, content, json.dumps(extra) if extra else None, time.time()),
                )
                self._db.execute("COMMIT")
            except BaseException:
                self._db.execute("ROLLBACK")
                raise

    def turns(self, session_id: str) -> list[dict]:
        """Every turn with its extra data (citations, rewritten query)."""
        with self._lock:
            rows = self._db.execute(
                "SELECT role, content, extra, created FROM turns WHERE session = ? ORDER BY seq",
                (session_id,),
            ).fetchall()
        return [
            {"role": r, "content": c, **({"extra": json.loads(e)} if e else {}), "created": t}
            for r, c, e, t in rows
        ]

    def recent(self, owner: str | None, limit: int = 100) -> list[dict]:
        """`owner`'s sessions, the latest activity first: id, created, updated (the last turn's
        time, else created), title (the first question's first 80 characters, "" before it) and
        the number of turns."""
        with self._lock:
            rows = self._db.execute(
                """
                SELECT s.id, s.created, COALESCE(MAX(t.created), s.created) AS updated, COUNT(t.seq),
                    (SELECT substr(q.content, 1, 80) FROM turns q
                     WHERE q.session = s.id AND q.role = 'user' ORDER BY q.seq LIMIT 1)
                FROM sessions s LEFT JOIN turns t ON t.session = s.id
                WHERE s.owner IS ? GROUP BY s.id ORDER BY updated DESC, s.id LIMIT ?
                """,
                (owner, limit),
            ).fetchall()
        return [
            {"id": i, "created": c, "updated": u, "title": title or "", "turns": n}
            for i, c, u, n, title in rows
        ]

    def messages(self, session_id: str, last_turns: int | None = None) -> list[Message]:
        """The conversation as chat messages; the last `last_turns` question/answer pairs if given."""
        history = [{"role": t["role"], "content": t["content"]} for t in self.turns(session_id)]
        return history[-2 * last_turns :] if last_turns else history

    def delete(self, session_id: str) -> bool:
        with self._lock:
            self._db.execute("DELETE FROM turns WHERE session = ?", (session_id,))
            return self._db.execute("DELETE FROM sessions WHERE id = ?", (session_id,)).rowcount > 0

    def close(self) -> None:
        self._db.close()


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
