"""What the HTTP handlers share. One AppState per collection (its settings, index, uploads, job
runner and chat); the models, loaded once on first use, are shared by all of them (`Models`).
Handlers get the request's collection with `Depends(get_state)`, checked against the key's grant
(serve.service.Service.open).
"""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Annotated

from fastapi import Depends, HTTPException, Request

from indexes import DocumentRecord, IndexStore
from rag.conversation import Chat, SessionStore, open_chat, open_session_store
from rag.embedders import load_embedder, query_backend
from rag.embedding import Embedder
from rag.engines import open_generator
from rag.generation import Generator
from rag.ingest import IngestReport, ingest, remove_documents
from rag.retrieval import Retriever
from rag.sessions_postgres import is_postgres_url
from rag.settings import Settings
from serve.auth import Grant
from serve.jobs import Job, JobRunner, public_text
from serve.metrics import Metrics
from serve.uploads import remove_partials


class Models:
    """The generator and the embedder, each loaded once on first use and shared by every
    collection; the lock keeps two first requests from loading them twice."""

    def __init__(self, settings: Settings, generator: Generator | None, embedder: Embedder | None):
        self.settings, self._generator, self.embedder = settings, generator, embedder
        self._query_embedders: dict[tuple[str, str], Embedder] = {}
        self._lock = threading.Lock()

    def generator(self) -> Generator:
        with self._lock:
            if self._generator is None:
                self._generator = open_generator(self.settings)
            return self._generator

    def embedding_model(self) -> Embedder:
        with self._lock:
            if self.embedder is None:
                s = self.settings
                self.embedder = load_embedder(s.model, s.embed_backend, s.embed_batch_size, s.embed_precision)
            return self.embedder

    def query_embedder(self, model: str, index_backend: str) -> Embedder:
        """What embeds the queries of an index of `model` whose vectors `index_backend` made
        (rag.calibration.query_backend): the int8 ONNX graph where it is the faster, else the
        document embedder itself when it is that model's."""
        backend = query_backend(model, index_backend, self.settings.query_backend)
        own = self.embedder.backend if self.embedder is not None else self.settings.embed_backend
        if backend == own and model == self.settings.model:
            return self.embedding_model()
        with self._lock:
            if (model, backend) not in self._query_embedders:
                self._query_embedders[model, backend] = load_embedder(model, backend)
            return self._query_embedders[model, backend]

    def generator_name(self) -> str:
        """The generator's name, without loading it."""
        return self._generator.name if self._generator else self.settings.llm_model


class AppState:
    """One collection of the service. The models load on first use so that /health answers at
    once and an empty index can take its first upload; everything that loads or reads is blocking
    and is called from the thread pool.

    Args:
        settings: the collection's index and session file, the models, the upload limit.
        models: the shared generator and embedder.
        metrics: the service's metrics.
    """

    def __init__(self, settings: Settings, models: Models, metrics: Metrics):
        self.settings, self.models, self.metrics = settings, models, metrics
        self.name = settings.collection or "default"
        self._chat: Chat | None = None
        self._sessions: SessionStore | None = None
        self._lock, self._sessions_lock = threading.Lock(), threading.Lock()
        self.store = IndexStore(settings.index)
        self.uploads = settings.index.parent / f"{settings.index.name}-documents"
        self.uploads.mkdir(parents=True, exist_ok=True)
        remove_partials(self.uploads)
        table = None
        if is_postgres_url(settings.state_url):  # replicas: jobs and the writer's turn shared
            from serve.job_table import JobTable

            table = JobTable(settings.state_url, self.name)
        self.jobs = JobRunner(
            settings.lock_wait_s, settings.job_keep_s, settings.job_keep,
            folders=(settings.index, self.uploads), table=table, writer_key=self.name,
        )

    def chat(self) -> Chat:
        with self._lock:
            if self._chat is None:
                models = self.models
                with self.store.open() as snapshot:
                    manifest = snapshot.manifest
                embedder = models.query_embedder(manifest.model, manifest.embed_backend)
                retriever = Retriever(
                    self.settings.index, embedder, reranker=self.settings.reranker,
                    query_backend=self.settings.query_backend,
                )
                self._chat = open_chat(self.settings, models.generator(), retriever, self.sessions())
            return self._chat

    def retriever(self) -> Retriever:
        return self.chat().answerer.retriever

    def sessions(self) -> SessionStore:
        """The collection's conversations, opened without the models: listing or starting a
        session loads no generator (the chat, once open, writes its turns to this same store)."""
        with self._sessions_lock:
            if self._sessions is None:
                self._sessions = open_session_store(self.settings)
            return self._sessions

    def session(self, session_id: str | None, grant: Grant) -> str:
        """The session a chat turn goes on: a new one the server names when none is given, else
        the given one if this key made it here (404 otherwise: another key's session does not
        exist for this one)."""
        sessions = self.sessions()
        if session_id is None:
            return sessions.create(owner=grant.name)
        if not sessions.owned_by(session_id, grant.name):
            raise HTTPException(404, f"no session {session_id!r}")
        return session_id

    def count_tokens(self, text: str) -> int:
        counter = getattr(self.chat().answerer.generator, "count_tokens", None)
        return counter(text) if counter else len(text.split())

    def documents(self) -> list[DocumentRecord]:
        """The indexed documents, read from the records alone: no FAISS or BM25 index is loaded."""
        return self.store.documents()

    def ingest(self, paths: list[Path], job: Job) -> dict:
        """Index uploaded `paths` (a job's work), reporting files done on the job."""
        report = ingest(
            paths, self.settings, progress=False, embedder=self.models.embedder, on_file=_progress(job)
        )
        return self._result(report)

    def reindex(self, job: Job) -> dict:
        """Bring the index in line with the upload folder (a job's work): new and changed files
        are ingested, documents whose upload is gone dropped. Only those: the server prunes
        only what it manages, so a document ingested from a terminal stays when its file moves."""
        report = ingest(
            [self.uploads], self.settings, prune=self._is_upload, progress=False,
            embedder=self.models.embedder, on_file=_progress(job),
        )
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
    """The collection the request names (a `/v1/collections/{collection}/...` path, else the
    default), if the request's key may read it."""
    return request.app.state.rag.open(request.path_params.get("collection"), request.state.grant)


async def get_writable_state(request: Request) -> AppState:
    """As get_state, for requests that change the collection: the key must be allowed to write."""
    return request.app.state.rag.open(request.path_params.get("collection"), request.state.grant, write=True)


State = Annotated[AppState, Depends(get_state)]
WritableState = Annotated[AppState, Depends(get_writable_state)]
