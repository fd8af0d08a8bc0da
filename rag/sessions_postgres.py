"""Conversations in PostgreSQL, for several `rag serve` replicas behind one address.

The same interface as rag.sessions.SessionStore (SQLite, the default): a conversation
started on one replica continues on another. Every collection's sessions share two tables,
kept apart by a `scope` column (the collection's name), as SQLite keeps them in a file each.
Chosen by `RAG_STATE_URL=postgresql://...` (rag.conversation.open_session_store).
"""

from __future__ import annotations

import json
import threading
import time
from typing import TYPE_CHECKING

from rag.sessions import SessionStore

if TYPE_CHECKING:
    import psycopg

SCHEMA = """
CREATE TABLE IF NOT EXISTS rag_sessions (
    scope TEXT NOT NULL, id TEXT NOT NULL, created DOUBLE PRECISION NOT NULL, owner TEXT,
    PRIMARY KEY (scope, id));
CREATE TABLE IF NOT EXISTS rag_turns (
    scope TEXT NOT NULL, session TEXT NOT NULL, seq INTEGER NOT NULL, role TEXT NOT NULL,
    content TEXT NOT NULL, extra TEXT, created DOUBLE PRECISION NOT NULL,
    PRIMARY KEY (scope, session, seq),
    FOREIGN KEY (scope, session) REFERENCES rag_sessions (scope, id) ON DELETE CASCADE);
CREATE INDEX IF NOT EXISTS rag_sessions_owner ON rag_sessions (scope, owner);
"""
_SESSION = "SELECT {} FROM rag_sessions WHERE scope = %s AND id = %s"


def is_postgres_url(url: str | None) -> bool:
    return bool(url) and url.split("://", 1)[0] in ("postgresql", "postgres")


def connect(url: str) -> psycopg.Connection:
    """An autocommit connection; a clear error when the package or the server is missing."""
    try:
        import psycopg
    except ImportError as err:
        raise ValueError("a PostgreSQL state URL needs psycopg: pip install 'ragstack[scale]'") from err
    try:
        return psycopg.connect(url, autocommit=True, connect_timeout=10)
    except psycopg.OperationalError as err:
        raise ValueError(f"cannot connect to the state database: {str(err).strip()}") from None


class PostgresSessionStore:
    """Conversations by id in PostgreSQL; see rag.sessions.SessionStore for each method."""

    valid_id = staticmethod(SessionStore.valid_id)
    messages = SessionStore.messages  # built on turns(): the same for both stores

    def __init__(self, url: str, scope: str = "default"):
        self.scope = scope
        self._lock = threading.Lock()
        self._db = connect(url)
        with self._lock, self._db.transaction():
            self._db.execute("SELECT pg_advisory_xact_lock(hashtext('rag_sessions schema'))")
            for statement in filter(str.strip, SCHEMA.split(";")):
                self._db.execute(statement)

    def _rows(self, sql: str, args: tuple = ()) -> list[tuple]:
        with self._lock:
            return self._db.execute(sql, args).fetchall()

    def create(self, session_id: str | None = None, owner: str | None = None) -> str:
        session_id = SessionStore.new_id(session_id)
        with self._lock:
            self._db.execute(
                "INSERT INTO rag_sessions VALUES (%s, %s, %s, %s) ON CONFLICT DO NOTHING",
                (self.scope, session_id, time.time(), owner),
            )
        return session_id

    def owned_by(self, session_id: str, owner: str | None) -> bool:
        rows = self._rows(_SESSION.format("owner"), (self.scope, session_id))
        return bool(rows) and rows[0][0] == owner

    def exists(self, session_id: str) -> bool:
        return bool(self._rows(_SESSION.format("1"), (self.scope, session_id)))

    def append(self, session_id: str, role: str, content: str, extra: dict | None = None) -> None:
        extra_json = json.dumps(extra) if extra else None
        with self._lock, self._db.transaction():
            self._db.execute(
                "INSERT INTO rag_sessions (scope, id, created) VALUES (%s, %s, %s) ON CONFLICT DO NOTHING",
                (self.scope, session_id, time.time()),
            )
            # the session's row locked: two replicas appending to one session number turns in turn
            self._db.execute(_SESSION.format("1") + " FOR UPDATE", (self.scope, session_id))
            (seq,) = self._db.execute(
                "SELECT COALESCE(MAX(seq), 0) + 1 FROM rag_turns WHERE scope = %s AND session = %s",
                (self.scope, session_id),
            ).fetchone()
            self._db.execute(
                "INSERT INTO rag_turns VALUES (%s, %s, %s, %s, %s, %s, %s)",
                (self.scope, session_id, seq, role, content, extra_json, time.time()),
            )

    def turns(self, session_id: str) -> list[dict]:
        rows = self._rows(
            "SELECT role, content, extra, created FROM rag_turns WHERE scope = %s AND session = %s "
            "ORDER BY seq",
            (self.scope, session_id),
        )
        return [
            {"role": r, "content": c, **({"extra": json.loads(e)} if e else {}), "created": t}
            for r, c, e, t in rows
        ]

    def recent(self, owner: str | None, limit: int = 100) -> list[dict]:
        rows = self._rows(
            """
            SELECT s.id, s.created, COALESCE(MAX(t.created), s.created) AS updated, COUNT(t.seq),
                (SELECT substr(q.content, 1, 80) FROM rag_turns q
                 WHERE q.scope = s.scope AND q.session = s.id AND q.role = 'user' ORDER BY q.seq LIMIT 1)
            FROM rag_sessions s LEFT JOIN rag_turns t ON t.scope = s.scope AND t.session = s.id
            WHERE s.scope = %s AND s.owner IS NOT DISTINCT FROM %s
            GROUP BY s.scope, s.id ORDER BY updated DESC, s.id LIMIT %s
            """,
            (self.scope, owner, limit),
        )
        return [
            {"id": i, "created": c, "updated": u, "title": title or "", "turns": n}
            for i, c, u, n, title in rows
        ]

    def delete(self, session_id: str) -> bool:
        with self._lock:
            cursor = self._db.execute(
                "DELETE FROM rag_sessions WHERE scope = %s AND id = %s", (self.scope, session_id)
            )
            return cursor.rowcount > 0

    def close(self) -> None:
        self._db.close()
