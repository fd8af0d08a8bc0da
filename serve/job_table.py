"""Jobs shared by several `rag serve` replicas through PostgreSQL (`RAG_STATE_URL`).

A job runs on the replica that accepted it; its row, written at every change of status and
every half second while it runs, lets any replica answer `GET /v1/jobs/{id}`. The writer's turn
is a PostgreSQL advisory lock per index: replicas on different hosts cannot rely on the index
directory's flock (network filesystems do not all honour it), so a job takes this lock first and
waits for it as it waits for a locked index (serve.jobs.retry_locked).
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict

from indexes import IndexLocked
from rag.sessions_postgres import connect

SCHEMA = """
CREATE TABLE IF NOT EXISTS rag_jobs (
    scope TEXT NOT NULL, id TEXT NOT NULL, job TEXT NOT NULL, PRIMARY KEY (scope, id))
"""


class JobTable:
    """The jobs of one collection (`scope`) in PostgreSQL at `url`."""

    def __init__(self, url: str, scope: str = "default"):
        self.url, self.scope = url, scope
        self._lock = threading.Lock()
        self._db = connect(url)
        with self._lock, self._db.transaction():
            self._db.execute("SELECT pg_advisory_xact_lock(hashtext('rag_jobs schema'))")
            self._db.execute(SCHEMA)

    def save(self, job) -> None:
        """Write `job` (a serve.jobs.Job) as its row."""
        with self._lock:
            self._db.execute(
                "INSERT INTO rag_jobs VALUES (%s, %s, %s) "
                "ON CONFLICT (scope, id) DO UPDATE SET job = EXCLUDED.job",
                (self.scope, job.id, json.dumps(asdict(job))),
            )

    def load(self, job_id: str) -> dict | None:
        """The job's fields as its replica last wrote them, None if there is no such job."""
        with self._lock:
            row = self._db.execute(
                "SELECT job FROM rag_jobs WHERE scope = %s AND id = %s", (self.scope, job_id)
            ).fetchone()
        return None if row is None else json.loads(row[0])

    def forget(self, job_ids: list[str]) -> None:
        if job_ids:
            with self._lock:
                self._db.execute(
                    "DELETE FROM rag_jobs WHERE scope = %s AND id = ANY(%s)", (self.scope, job_ids)
                )

    @contextmanager
    def writer_turn(self, index_key: str) -> Iterator[None]:
        """Hold the cluster-wide writer lock of `index_key` (IndexLocked if another replica has it).
        Its own connection: an advisory lock lasts as long as the session that took it, so a
        replica that dies frees it."""
        db = connect(self.url)
        try:
            (taken,) = db.execute("SELECT pg_try_advisory_lock(hashtext(%s))", (index_key,)).fetchone()
            if not taken:
                raise IndexLocked(index_key)  # its holder is a process on another replica
            try:
                yield
            finally:
                db.execute("SELECT pg_advisory_unlock(hashtext(%s))", (index_key,))
        finally:
            db.close()

    def close(self) -> None:
        self._db.close()
