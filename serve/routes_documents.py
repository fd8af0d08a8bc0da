"""The index's routes: search it, upload and delete documents, re-index the upload folder, and
follow the jobs that change the index (one writer at a time, see serve.jobs).

Handlers that read the index or wait for a job are plain `def`s, which FastAPI runs in its
thread pool: none of them blocks the event loop.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, File, HTTPException, UploadFile
from starlette.concurrency import run_in_threadpool

from indexes import DocumentRecord
from serve.schemas import SearchRequest
from serve.state import State, require_api_key
from serve.uploads import save_upload

router = APIRouter(prefix="/v1", dependencies=[Depends(require_api_key)])


@router.post("/search")
def search(body: SearchRequest, state: State) -> dict:
    results = state.retriever().search(body.query, body.k, body.mode, body.docs)
    return {"query": body.query, "results": [r.to_dict() for r in results]}


@router.post("/documents", status_code=202)
async def upload(state: State, files: Annotated[list[UploadFile], File()], wait: bool = False) -> dict:
    """Save the PDFs and queue their ingestion; with `wait`, answer once it is done."""
    saved = [await save_upload(f, state.uploads, state.settings.max_upload_mb) for f in files]
    job = state.jobs.submit("ingest", lambda job: state.ingest(saved, job))
    if wait:
        await run_in_threadpool(state.jobs.wait, job)
    return {"documents": [p.name for p in saved], "job": job.to_dict()}


@router.get("/documents")
def list_documents(state: State) -> dict:
    return {"object": "list", "data": [_document(d) for d in state.documents()]}


def _document(d: DocumentRecord) -> dict:
    return {
        "id": d.name,
        "name": d.name,
        "pages": d.pages,
        "chunks": d.chunks,
        "size": d.size,
        "sha256": d.sha256,
        "title": d.title,
        "header": d.header,
    }


@router.delete("/documents/{doc_id}")
def delete_document(doc_id: str, state: State) -> dict:
    """Remove a document and answer once the new generation without it is published."""
    if doc_id not in {d.name for d in state.documents()}:
        raise HTTPException(404, f"no document {doc_id!r}")
    job = state.jobs.wait(state.jobs.submit("delete", lambda job: state.delete(doc_id)))
    if job.status == "failed":
        raise HTTPException(409, job.error or "delete failed")
    return {"id": doc_id, "deleted": True, "generation": job.result["generation"]}


@router.post("/reindex", status_code=202)
def reindex(state: State) -> dict:
    """Re-index the upload folder: new and changed files are ingested, removed ones dropped."""
    job = state.jobs.submit("reindex", lambda job: state.ingest([state.uploads], job, prune=True))
    return job.to_dict()


@router.get("/jobs/{job_id}")
def job_status(job_id: str, state: State) -> dict:
    job = state.jobs.get(job_id)
    if job is None:
        raise HTTPException(404, f"no job {job_id!r}")
    return job.to_dict()
