"""What the HTTP handlers share: settings, the models (loaded on first use), the job runner and
the metrics. One AppState per app, on `app.state.rag`; handlers get it with `Depends(get_state)`.
"""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Annotated

from fastapi import Depends, HTTPException, Request

from indexes import DocumentRecord, IndexStore
from rag.conversation import Chat, SessionStore, open_chat
from rag.embedding import Embedder
from rag.generation import Generator
from rag.ingest import IngestReport, file_sources, ingest, remove_documents, update_index
from rag.parsing_sandbox import Limits, ParsingSandbox
from rag.retrieval import Retriever
from rag.settings import Settings
from serve.jobs import Job, JobRunner, public_text
from serve.metrics import Metrics
from serve.uploads import remove_partials


class AppState:
    """The shared state of one app. The models load on first use so that /health answers at once
    and an empty index can take its first upload; everything that loads or reads is blocking and
    is called from the thread pool.

    Args:
        settings: the index, models, API keys and upload limit.
        generator: the answer model; the one the settings name when omitted.
        embedder: the embedding model; the one the index's manifest names when omitted.
    """

    def __init__(
        self, settings: Settings, generator: Generator | None = None, embedder: Embedder | None = None
    ):
        self.settings = settings
        self._generator, self._embedder = generator, embedder
        self._chat: Chat | None = None
        self._lock = threading.Lock()  # two first requests must not load the models twice
        self.store = IndexStore(settings.index)
        self.metrics = Metrics()
        self.api_keys = {k.strip() for k in settings.api_keys.split(",") if k.strip()}
        self.uploads = settings.index.parent / f"{settings.index.name}-documents"
        self.uploads.mkdir(parents=True, exist_ok=True)
        remove_partials(self.uploads)
        self.jobs = JobRunner(
            settings.lock_wait_s, settings.job_keep_s, settings.job_keep,
            folders=(settings.index, self.uploads),
        )

    def chat(self) -> Chat:
        with self._lock:
            if self._chat is None:
                retriever = Retriever(self.settings.index, self._embedder, reranker=self.settings.reranker)
                self._chat = open_chat(self.settings, self._generator, retriever)
                self._embedder = retriever.embedder
            return self._chat

    def retriever(self) -> Retriever:
        return self.chat().answerer.retriever

    def sessions(self) -> SessionStore:
        return self.chat().sessions

    def model_name(self) -> str:
        """The generator's name, without loading it."""
        if self._chat is not None:
            return self._chat.answerer.generator.name
        return self._generator.name if self._generator else self.settings.llm_model

    def count_tokens(self, text: str) -> int:
        counter = getattr(self.chat().answerer.generator, "count_tokens", None)
        return counter(text) if counter else len(text.split())

    def documents(self) -> list[DocumentRecord]:
        """The indexed documents, read from the records alone: no FAISS or BM25 index is loaded."""
        return self.store.documents()

    def ingest(self, paths: list[Path], job: Job) -> dict:
        """Index uploaded `paths` (a job's work), reporting files done on the job."""
        report = ingest(
            paths, self.settings, progress=False, embedder=self._embedding_model(), on_file=_progress(job)
        )
        return self._result(report)

    def reindex(self, job: Job) -> dict:
        """Bring the index in line with the upload folder (a job's work): new and changed files
        are ingested, documents whose upload is gone dropped. Only those: the server prunes
        only what it manages, so a document ingested from a terminal stays when its file moves."""
        sources, failures = file_sources([self.uploads])
        with ParsingSandbox(Limits.from_settings(self.settings)) as sandbox:  # as rag.ingest.ingest
            for source in sources:
                source.load, source.read_title = sandbox.loaders(Path(source.path), self.settings.extractor)
            report = update_index(
                sources, self.settings, prune=self._is_upload, progress=False,
                embedder=self._embedding_model(), on_file=_progress(job),
            )
        report.files = failures + report.files
        return self._result(report)

    def _is_upload(self, path: str | Path) -> bool:
        return self.uploads.resolve() in Path(path).resolve().parents

    def _result(self, report: IngestReport) -> dict:
        """The report as clients see it: documents by name, errors without server paths. A file
        that failed is removed from the upload folder (`removed: true`), so that it is neither
        kept nor parsed again at every re-index; a version indexed before stays indexed."""
        files = []
        for f in report.files:
            removed = f.status == "failed" and self._is_upload(f.path)
            if removed:
                Path(f.path).unlink(missing_ok=True)
            error = public_text(f.error, self.jobs.folders)
            files.append({
                "name": f.name, "status": f.status, "pages": f.pages, "chunks": f.chunks,
                "error": error, "error_kind": f.error_kind, "removed": removed,
            })
        return {
            "generation": report.generation,
            "pages": report.pages,
            "files": files,
            "chunks_embedded": report.chunks_embedded,
            "chunks_reused": report.chunks_reused,
        }

    def _embedding_model(self) -> Embedder | None:
        """The loaded embedder, else ingest loads the one the index's manifest names."""
        return self._chat.answerer.retriever.embedder if self._chat else self._embedder

    def delete(self, name: str) -> dict:
        """Remove a document from the index (a job's work), and its upload if it was one."""
        report = remove_documents([name], self.settings)
        for f in report.files:
            upload = self.uploads / Path(f.path).name
            if Path(f.path).resolve() == upload.resolve():
                upload.unlink(missing_ok=True)
        return {"generation": report.generation}


def _progress(job: Job):
    """An ingest's `on_file`: files done, reported on the job."""

    def progress(done: int, total: int) -> None:
        job.files_done, job.files_total = done, total

    return progress


async def get_state(request: Request) -> AppState:
    return request.app.state.rag


State = Annotated[AppState, Depends(get_state)]


async def require_api_key(request: Request, state: State) -> None:
    """With API keys configured, every route but /health needs `Authorization: Bearer KEY`."""
    given = request.headers.get("authorization", "").removeprefix("Bearer ").strip()
    if state.api_keys and given not in state.api_keys:
        raise HTTPException(401, "missing or wrong API key: send Authorization: Bearer KEY")
