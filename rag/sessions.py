"""Conversations by id in one SQLite file: the sessions of `rag chat` and of `rag serve`.

Several API replicas share theirs in PostgreSQL instead (rag.sessions_postgres), through the same
interface; rag.conversation.open_session_store picks one from the settings.
"""

from __future__ import annotations

import json
import re
import sqlite3
import threading
import time
import uuid
from pathlib import Path

from rag.generation import Message

_SESSION_ID = re.compile(r"^[A-Za-z0-9_.:-]{1,128}$")


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
