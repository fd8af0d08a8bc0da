"""Index-changing work (uploads, deletions, re-indexing) in one background worker.

One worker, because the index has one writer at a time: queued jobs wait their turn instead of
failing on the index lock, while queries keep being answered from the published generation.
"""

from __future__ import annotations

import threading
import time
import traceback
import uuid
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import asdict, dataclass, field


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

    def to_dict(self) -> dict:
        return asdict(self)


class JobRunner:
    def __init__(self):
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="index-writer")
        self._jobs: dict[str, Job] = {}
        self._futures: dict[str, Future] = {}
        self._lock = threading.Lock()

    def submit(self, kind: str, work: Callable[[Job], dict]) -> Job:
        """Queue `work(job)`; it may update job.files_done/files_total; its dict becomes job.result."""
        job = Job(uuid.uuid4().hex[:16], kind)

        def run() -> None:
            job.status = "running"
            job.started = time.time()
            try:
                job.result = work(job)
                job.status = "done"
            except Exception as err:  # noqa: BLE001 - reported on the job, the worker goes on
                job.error = f"{type(err).__name__}: {err}"
                job.status = "failed"
                traceback.print_exc()
            finally:
                job.finished = time.time()

        with self._lock:
            self._jobs[job.id] = job
            self._futures[job.id] = self._pool.submit(run)
        return job

    def get(self, job_id: str) -> Job | None:
        return self._jobs.get(job_id)

    def wait(self, job: Job, timeout: float | None = None) -> Job:
        self._futures[job.id].result(timeout)
        return job

    def shutdown(self) -> None:
        self._pool.shutdown(wait=True, cancel_futures=True)
