"""Index-changing work (uploads, deletions, re-indexing) in one background worker.

One worker, because the index has one writer at a time: queued jobs wait their turn instead of
failing on the index lock, while queries keep being answered from the published generation.
A job that meets the lock held by another process (`rag ingest` from a terminal) waits for it
and tries again, for up to `lock_wait_s`. Finished jobs are forgotten after `keep_s` seconds, or
sooner when more than `keep` of them are kept, so the table does not grow forever.

What a job reports goes to HTTP clients: its error text is cleared of the server's paths and of
process ids (`public_text`).
"""

from __future__ import annotations

import concurrent.futures
import re
import threading
import time
import traceback
import uuid
from collections.abc import Callable, Iterable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import TYPE_CHECKING

from indexes import IndexLocked

if TYPE_CHECKING:
    from serve.job_table import JobTable

FIRST_RETRY_S, LAST_RETRY_S = 0.1, 2.0  # backoff between tries on a locked index
_ABSOLUTE_PATH = re.compile(r"(?<![\w.:/~-])/(?!v1/)(?:[^/\s'\"():,;]+/)+([^/\s'\"():,;]*)")
_PID = re.compile(r"\bpid \d+\b")


@dataclass
class Job:
    id: str
    kind: str
    status: str = "queued"  # queued, running, done, failed
    files_done: int = 0
    files_total: int = 0
    created: float = field(default_factory=time.time)
    started: float | None = None
    finished: float | None = None
    result: dict | None = None
    error: str | None = None
    lock_waits: int = 0  # tries that found the index locked by another process

    def to_dict(self) -> dict:
        return asdict(self)

    @property
    def over(self) -> bool:
        return self.status in ("done", "failed")


def public_text(text: str, folders: Iterable[Path] = ()) -> str:
    """`text` without server paths or process ids: a path under one of `folders` keeps only
    what follows the folder, any other absolute path only its last part, `pid N` goes."""
    names = {str(f) for p in folders for f in (Path(p), Path(p).resolve())}
    for folder in sorted(names, key=len, reverse=True):  # the longest first: index-documents/
        text = text.replace(folder + "/", "").replace(folder, "<server>")
    text = _ABSOLUTE_PATH.sub(lambda m: m.group(1) or "<server>", text)
    return _PID.sub("pid ?", text)


def retry_locked(work: Callable[[], dict], job: Job, wait_s: float, stop: threading.Event) -> dict:
    """`work()`, tried again with growing pauses while another process holds the index lock,
    for up to `wait_s` seconds (a server shutting down stops waiting): nothing is written before
    the lock is taken, so trying again is safe."""
    deadline, pause = time.monotonic() + wait_s, FIRST_RETRY_S
    while True:
        try:
            return work()
        except IndexLocked:
            left = deadline - time.monotonic()
            if left <= 0 or stop.is_set():
                raise
            job.lock_waits += 1
            stop.wait(min(pause, left))
            pause = min(pause * 2, LAST_RETRY_S)


class JobRunner:
    """One worker thread running jobs in order.

    Args:
        lock_wait_s: how long a job waits for an index locked by another process.
        keep_s: finished jobs are forgotten after this many seconds...
        keep: ...or once more than this many finished jobs are kept (the oldest go).
        folders: server folders (index, uploads) that error texts must not show.
        table: where replicas share jobs (serve.job_table, PostgreSQL); None: this process only.
        writer_key: the index's name in the table's writer lock, taken around every job.
    """

    def __init__(
        self,
        lock_wait_s: float = 120.0,
        keep_s: float = 3600.0,
        keep: int = 1000,
        folders: Iterable[Path] = (),
        table: JobTable | None = None,
        writer_key: str = "",
    ):
        self.lock_wait_s, self.keep_s, self.keep = lock_wait_s, keep_s, keep
        self.table, self.writer_key = table, writer_key
        self.folders = list(folders)
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="index-writer")
        self._jobs: dict[str, Job] = {}
        self._futures: dict[str, Future] = {}
        self._lock = threading.Lock()
        self._stop = threading.Event()

    def submit(self, kind: str, work: Callable[[Job], dict]) -> Job:
        """Queue `work(job)`; it may update job.files_done/files_total; its dict becomes job.result."""
        job = Job(uuid.uuid4().hex[:16], kind)

        def run() -> None:
            job.status = "running"
            job.started = time.time()
            status = "failed"
            finished = self._share(job)
            try:
                job.result = retry_locked(lambda: self._in_turn(work, job), job, self.lock_wait_s, self._stop)
                status = "done"
            except IndexLocked as err:
                job.error = f"IndexLocked: {err.public} (waited {self.lock_wait_s:g} s)"
            except Exception as err:  # noqa: BLE001 - reported on the job, the worker goes on
                job.error = public_text(f"{type(err).__name__}: {err}", self.folders)
                traceback.print_exc()  # the full text, paths included, stays in the server's log
            finally:
                job.finished = time.time()  # before the status: a client seeing "done" reads it
                job.status = status
                finished.set()

        with self._lock:
            self._expire()
            self._jobs[job.id] = job
            if self.table is not None:
                self.table.save(job)
            self._futures[job.id] = self._pool.submit(run)
        return job

    def _in_turn(self, work: Callable[[Job], dict], job: Job) -> dict:
        """`work(job)` while holding the replicas' writer lock, where replicas share one."""
        if self.table is None:
            return work(job)
        with self.table.writer_turn(self.writer_key):
            return work(job)

    def _share(self, job: Job) -> threading.Event:
        """Write the job's row every half second until the returned event is set, and once more
        then: other replicas read its progress from the table."""
        finished = threading.Event()
        if self.table is not None:
            table = self.table

            def keep_writing() -> None:
                while not finished.wait(0.5):
                    table.save(job)
                table.save(job)

            threading.Thread(target=keep_writing, daemon=True, name=f"job-{job.id}").start()
        return finished

    def get(self, job_id: str) -> Job | None:
        """The job, from this process or, with a shared table, from whichever replica runs it."""
        with self._lock:
            self._expire()
            job = self._jobs.get(job_id)
        if job is None and self.table is not None and (row := self.table.load(job_id)) is not None:
            known = {f.name for f in fields(Job)}
            job = Job(**{k: v for k, v in row.items() if k in known})
        return job

    def wait(self, job: Job, timeout: float | None = None) -> Job:
        """The job once it is over, or as it stands after `timeout` seconds."""
        future = self._futures.get(job.id)
        if future is not None:
            try:
                future.result(timeout)
            except concurrent.futures.TimeoutError:
                pass
        return job

    def _expire(self) -> None:
        """Forget finished jobs older than keep_s, and the oldest beyond `keep` (lock held)."""
        now = time.time()
        finished = sorted((j for j in self._jobs.values() if j.over), key=lambda j: j.finished or 0)
        old = [j for j in finished if now - (j.finished or now) > self.keep_s]
        old += finished[len(old):][: max(0, len(finished) - len(old) - self.keep)]
        for j in old:
            self._jobs.pop(j.id, None)
            self._futures.pop(j.id, None)
        if self.table is not None:
            self.table.forget([j.id for j in old])

    def shutdown(self) -> None:
        self._stop.set()  # a job waiting for the lock gives up now
        self._pool.shutdown(wait=True, cancel_futures=True)
