"""The HTTP service: OpenAI-compatible chat, embeddings and models, plus search, documents,
re-indexing jobs and sessions. Handlers translate HTTP into calls of `rag` and back.

Citations: a chat completion's message text cites sources as [n] and ends with a "Sources:"
list naming document and page; the same data comes structured in the response's extra
`citations` field (and, when streaming, on the last chunk before [DONE]).
"""

from __future__ import annotations

import base64
import json
import re
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Annotated

from fastapi import Depends, FastAPI, File, HTTPException, Request, UploadFile
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, PlainTextResponse, StreamingResponse
from starlette.concurrency import iterate_in_threadpool, run_in_threadpool

from indexes import IndexLocked, StoreError
from rag.conversation import Chat, SessionStore, open_chat
from rag.embedding import Embedder
from rag.generation import Generator
from rag.ingest import ingest, remove_documents
from rag.retrieval import Retriever
from rag.settings import Settings
from serve.jobs import Job, JobRunner
from serve.metrics import Metrics
from serve.schemas import ChatRequest, EmbeddingRequest, SearchRequest

PDF_MAGIC = b"%PDF-"
_UNSAFE = re.compile(r"[^A-Za-z0-9._ -]+")


def create_app(
    settings: Settings, generator: Generator | None = None, embedder: Embedder | None = None
) -> FastAPI:
    """The app for one index; the generator and embedder default to those the settings name.

    The models load on first use, so that /health answers at once and an empty index can take
    its first upload.
    """
    state = _State(settings, generator, embedder)

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        yield
        state.jobs.shutdown()

    app = FastAPI(title="ragstack", version="0.1.0", lifespan=lifespan)
    app.state.rag = state
    keys = {k.strip() for k in settings.api_keys.split(",") if k.strip()}

    async def authorise(request: Request) -> None:
        if keys and request.headers.get("authorization", "").removeprefix("Bearer ").strip() not in keys:
            raise HTTPException(401, "missing or wrong API key: send Authorization: Bearer KEY")

    @app.middleware("http")
    async def count_requests(request: Request, call_next):
        start = time.perf_counter()
        response = await call_next(request)
        route = request.scope.get("route")
        state.metrics.request(
            request.method,
            getattr(route, "path", "unmatched"),
            response.status_code,
            time.perf_counter() - start,
        )
        return response

    @app.exception_handler(RequestValidationError)
    async def invalid_body(request: Request, err: RequestValidationError) -> JSONResponse:
        details = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in err.errors())
        return _error(422, f"invalid request: {details}")

    @app.exception_handler(HTTPException)
    async def http_error(request: Request, err: HTTPException) -> JSONResponse:
        return _error(err.status_code, str(err.detail))

    @app.exception_handler(IndexLocked)
    async def locked(request: Request, err: IndexLocked) -> JSONResponse:
        return _error(409, str(err))

    @app.exception_handler(StoreError)
    async def no_index(request: Request, err: StoreError) -> JSONResponse:
        return _error(409, f"{err}; upload documents first (POST /v1/documents)")

    @app.exception_handler(ValueError)
    async def bad_value(request: Request, err: ValueError) -> JSONResponse:
        return _error(400, str(err))

    @app.get("/health")
    def health() -> dict:
        return {"status": "ok", "generation": state.store_generation()}

    secured = [Depends(authorise)]

    @app.get("/metrics", dependencies=secured, response_class=PlainTextResponse)
    def metrics() -> PlainTextResponse:
        return PlainTextResponse(state.metrics.render(), media_type="text/plain; version=0.0.4")

    @app.get("/v1/models", dependencies=secured)
    def models() -> dict:
        return {
            "object": "list",
            "data": [
                {"id": state.model_name(), "object": "model", "created": 0, "owned_by": "ragstack"},
                {"id": settings.model, "object": "model", "created": 0, "owned_by": "ragstack"},
            ],
        }

    @app.post("/v1/chat/completions", dependencies=secured)
    async def chat_completions(body: ChatRequest):
        chat = await run_in_threadpool(state.chat)
        if body.session_id is not None and not SessionStore.valid_id(body.session_id):
            raise HTTPException(422, "session_id: 1-128 letters, digits or _.:-")
        question = body.messages[-1].text()
        earlier = [
            {"role": m.role, "content": m.text()}
            for m in body.messages[:-1]
            if m.role in ("user", "assistant")
        ]
        history = earlier or None  # none given: the session's history (if any) is used
        options = {
            "docs": body.docs,
            "temperature": body.temperature,
            "max_tokens": body.max_completion_tokens or body.max_tokens,
        }
        turn = chat.turn(question, body.session_id, history, **options)
        completion_id = f"chatcmpl-{uuid.uuid4().hex[:24]}"
        model = body.model or state.model_name()
        if not body.stream:
            text = "".join(await run_in_threadpool(list, turn))
            answer = turn.answer
            state.metrics.tokens(state.count_tokens(text))
            return {
                "id": completion_id,
                "object": "chat.completion",
                "created": int(time.time()),
                "model": model,
                "choices": [
                    {
                        "index": 0,
                        "finish_reason": "stop",
                        "message": {"role": "assistant", "content": _with_sources(answer)},
                    }
                ],
                "usage": {
                    "prompt_tokens": 0,
                    "completion_tokens": state.count_tokens(answer.text),
                    "total_tokens": state.count_tokens(answer.text),
                },
                **_extras(answer, body.session_id),
            }
        return StreamingResponse(
            iterate_in_threadpool(_sse(turn, completion_id, model, body.session_id, state)),
            media_type="text/event-stream",
        )

    @app.post("/v1/embeddings", dependencies=secured)
    async def embeddings(body: EmbeddingRequest) -> dict:
        retriever = await run_in_threadpool(state.retriever)
        texts = [body.input] if isinstance(body.input, str) else body.input
        vectors = await run_in_threadpool(retriever.embedder.encode, texts)
        tokens = sum(len(retriever.embedder.tokenizer(t)["input_ids"]) for t in texts)
        return {
            "object": "list",
            "model": retriever.embedder.name,
            "data": [
                {"object": "embedding", "index": i, "embedding": v.tolist()} for i, v in enumerate(vectors)
            ],
            "usage": {"prompt_tokens": tokens, "total_tokens": tokens},
        }

    @app.post("/v1/search", dependencies=secured)
    async def search(body: SearchRequest) -> dict:
        retriever = await run_in_threadpool(state.retriever)
        results = await run_in_threadpool(retriever.search, body.query, body.k, body.mode, body.docs)
        return {"query": body.query, "results": [r.to_dict() for r in results]}

    @app.post("/v1/documents", dependencies=secured, status_code=202)
    async def upload(files: Annotated[list[UploadFile], File()], wait: bool = False) -> dict:
        saved = [await _save_upload(f, state.uploads, settings.max_upload_mb) for f in files]
        job = state.jobs.submit("ingest", lambda job: state.ingest(saved, job))
        if wait:
            await run_in_threadpool(state.jobs.wait, job)
        return {"documents": [p.name for p in saved], "job": job.to_dict()}

    @app.get("/v1/documents", dependencies=secured)
    def list_documents() -> dict:
        return {
            "object": "list",
            "data": [
                {
                    "id": d.name,
                    "name": d.name,
                    "pages": d.pages,
                    "chunks": d.chunks,
                    "size": d.size,
                    "sha256": d.sha256,
                }
                for d in state.documents()
            ],
        }

    @app.delete("/v1/documents/{doc_id}", dependencies=secured)
    async def delete_document(doc_id: str) -> dict:
        if doc_id not in {d.name for d in state.documents()}:
            raise HTTPException(404, f"no document {doc_id!r}")
        job = state.jobs.submit("delete", lambda job: state.delete(doc_id))
        await run_in_threadpool(state.jobs.wait, job)
        if job.status == "failed":
            raise HTTPException(409, job.error or "delete failed")
        return {"id": doc_id, "deleted": True, "generation": job.result["generation"]}

    @app.post("/v1/reindex", dependencies=secured, status_code=202)
    def reindex() -> dict:
        job = state.jobs.submit("reindex", lambda job: state.ingest([state.uploads], job, prune=True))
        return job.to_dict()

    @app.get("/v1/jobs/{job_id}", dependencies=secured)
    def job_status(job_id: str) -> dict:
        job = state.jobs.get(job_id)
        if job is None:
            raise HTTPException(404, f"no job {job_id!r}")
        return job.to_dict()

    @app.get("/v1/sessions/{session_id}", dependencies=secured)
    def get_session(session_id: str) -> dict:
        if not state.sessions().exists(session_id):
            raise HTTPException(404, f"no session {session_id!r}")
        return {"id": session_id, "turns": state.sessions().turns(session_id)}

    @app.delete("/v1/sessions/{session_id}", dependencies=secured)
    def delete_session(session_id: str) -> dict:
        if not state.sessions().delete(session_id):
            raise HTTPException(404, f"no session {session_id!r}")
        return {"id": session_id, "deleted": True}

    return app


class _State:
    """What the handlers share; the models load on first use so that /health answers at once."""

    def __init__(self, settings: Settings, generator: Generator | None, embedder: Embedder | None):
        self.settings = settings
        self._generator, self._embedder = generator, embedder
        self._chat: Chat | None = None
        self.jobs = JobRunner()
        self.metrics = Metrics()
        self.uploads = settings.index.parent / f"{settings.index.name}-documents"
        self.uploads.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()

    def chat(self) -> Chat:
        with self._lock:
            if self._chat is None:
                retriever = Retriever(self.settings.index, self._embedder)
                self._chat = open_chat(self.settings, self._generator, retriever)
                self._embedder = retriever.embedder
            return self._chat

    def retriever(self) -> Retriever:
        return self.chat().answerer.retriever

    def sessions(self) -> SessionStore:
        return self.chat().sessions

    def model_name(self) -> str:
        if self._chat is not None:
            return self._chat.answerer.generator.name
        return self._generator.name if self._generator else self.settings.llm_model

    def count_tokens(self, text: str) -> int:
        counter = getattr(self.chat().answerer.generator, "count_tokens", None)
        return counter(text) if counter else len(text.split())

    def store_generation(self) -> str | None:
        from indexes import IndexStore

        return IndexStore(self.settings.index).current_name()

    def documents(self):
        from indexes import IndexStore

        store = IndexStore(self.settings.index)
        if store.current_name() is None:
            return []
        snapshot = store.open()
        try:
            return snapshot.documents()
        finally:
            snapshot.close()

    def ingest(self, paths: list[Path], job: Job, prune: bool = False) -> dict:
        def progress(done: int, total: int) -> None:
            job.files_done, job.files_total = done, total

        embedder = self._chat.answerer.retriever.embedder if self._chat else None
        report = ingest(
            paths, self.settings, prune=prune, progress=False, embedder=embedder, on_file=progress
        )
        return {
            "generation": report.generation,
            "pages": report.pages,
            "files": [f.__dict__ for f in report.files],
            "chunks_embedded": report.chunks_embedded,
            "chunks_reused": report.chunks_reused,
        }

    def delete(self, name: str) -> dict:
        report = remove_documents([name], self.settings)
        for f in report.files:
            upload = self.uploads / Path(f.path).name
            if Path(f.path).resolve() == upload.resolve():
                upload.unlink(missing_ok=True)
        return {"generation": report.generation}


def _encode_vector(vector, encoding: str) -> list[float] | str:
    """OpenAI's encodings: a list of floats, or base64 of the little-endian float32 bytes."""
    if encoding == "base64":
        return base64.b64encode(vector.astype("<f4").tobytes()).decode()
    return vector.tolist()


def _error(status: int, message: str) -> JSONResponse:
    kind = (
        "authentication_error"
        if status == 401
        else "invalid_request_error"
        if status < 500
        else "server_error"
    )
    return JSONResponse({"error": {"message": message, "type": kind, "code": status}}, status_code=status)


def safe_filename(name: str | None) -> str:
    """The file's base name with anything but letters, digits, ._- and spaces removed."""
    base = Path((name or "").replace("\\", "/")).name
    base = _UNSAFE.sub("_", base).strip(" .")
    if not base:
        raise HTTPException(422, "the upload needs a file name")
    if not base.lower().endswith(".pdf"):
        base += ".pdf"
    return base


async def _save_upload(upload: UploadFile, folder: Path, max_mb: int) -> Path:
    name = safe_filename(upload.filename)
    data = await upload.read(max_mb * 1024 * 1024 + 1)
    if len(data) > max_mb * 1024 * 1024:
        raise HTTPException(413, f"{name} is larger than the {max_mb} MB limit")
    if not data.startswith(PDF_MAGIC):
        raise HTTPException(415, f"{name} is not a PDF (it does not start with %PDF-)")
    target = folder / name
    partial = target.with_name(f".{name}.{uuid.uuid4().hex[:8]}.part")
    partial.write_bytes(data)
    partial.replace(target)
    return target


def _with_sources(answer) -> str:
    if not answer.citations:
        return answer.text
    return answer.text + "\n\nSources:\n" + "\n".join(f"[{c.n}] {c.label()[1:-1]}" for c in answer.citations)


def _extras(answer, session_id: str | None) -> dict:
    return {
        "citations": [c.__dict__ for c in answer.citations],
        "sources": [
            {
                "n": n,
                "doc": s.doc,
                "page_start": s.page_start,
                "page_end": s.page_end,
                "chunk_id": s.chunk_id,
                "similarity": s.similarity,
            }
            for n, s in enumerate(answer.sources, 1)
        ],
        "invalid_citations": answer.invalid_citations,
        "query": answer.query,
        "found": answer.found,
        "session_id": session_id,
    }


def _sse(turn, completion_id: str, model: str, session_id: str | None, state: _State) -> Iterator[str]:
    def chunk(delta: dict, finish: str | None = None, **extra) -> str:
        body = {
            "id": completion_id,
            "object": "chat.completion.chunk",
            "created": int(time.time()),
            "model": model,
            "choices": [{"index": 0, "delta": delta, "finish_reason": finish}],
            **extra,
        }
        return f"data: {json.dumps(body)}\n\n"

    yield chunk({"role": "assistant", "content": ""})
    pieces = []
    for piece in turn:
        pieces.append(piece)
        yield chunk({"content": piece})
    answer = turn.answer
    state.metrics.tokens(state.count_tokens("".join(pieces)))
    tail = _with_sources(answer)[len(answer.text) :]
    if tail:
        yield chunk({"content": tail})
    yield chunk({}, "stop", **_extras(answer, session_id))
    yield "data: [DONE]\n\n"
