"""The index's routes: search it, upload and delete documents, re-index the upload folder, and
follow the jobs that change the index (one writer at a time, see serve.jobs).

Handlers that read the index or wait for a job are plain `def`s, which FastAPI runs in its
thread pool: none of them blocks the event loop.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, File, HTTPException, Response, UploadFile
from starlette.concurrency import run_in_threadpool

from indexes import DocumentRecord
from serve.schemas import SearchRequest
from serve.state import State, WritableState
from serve.uploads import save_upload

router = APIRouter()


@router.post("/search")
def search(body: SearchRequest, state: State) -> dict:
    results = state.retriever().search(body.query, body.k, body.mode, body.docs)
    return {"query": body.query, "results": [r.to_dict() for r in results]}


@router.post("/documents", status_code=202)
async def upload(
    state: WritableState, files: Annotated[list[UploadFile], File()], wait: bool = False
) -> dict:
    """Save the PDFs and queue their ingestion; with `wait`, answer once it is done or after
    `wait_timeout_s`, whichever comes first (the job's status says which). A file that fails to
    parse is removed from the upload folder (its result says `removed`)."""
    saved = [await save_upload(f, state.uploads, state.settings.max_upload_mb) for f in files]
    job = state.jobs.submit("ingest", lambda job: state.ingest(saved, job))
    if wait:
        await run_in_threadpool(state.jobs.wait, job, state.settings.wait_timeout_s)
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


@router.delete("/documents/{doc_id}", responses={202: {"description": "not done yet: the job"}})
def delete_document(doc_id: str, state: WritableState, response: Response) -> dict:
    """Remove a document and answer (200) once the new generation without it is published; when
    that takes longer than `wait_timeout_s` (another process holds the index), answer 202 with
    the job to follow at /v1/jobs/{id}."""
    if doc_id not in {d.name for d in state.documents()}:
        raise HTTPException(404, f"no document {doc_id!r}")
    job = state.jobs.submit("delete", lambda job: state.delete(doc_id))
    state.jobs.wait(job, state.settings.wait_timeout_s)
    if not job.over:
        response.status_code = 202
        return {"id": doc_id, "deleted": False, "job": job.to_dict()}
    if job.status == "failed":
        raise HTTPException(409, job.error or "delete failed")
    return {"id": doc_id, "deleted": True, "generation": job.result["generation"]}


@router.post("/reindex", status_code=202)
def reindex(state: WritableState) -> dict:
    """Re-index the upload folder: new and changed files are ingested, documents whose upload
    was removed are dropped; documents ingested from elsewhere (the CLI) are left alone."""
    job = state.jobs.submit("reindex", state.reindex)
    return job.to_dict()


@router.get("/jobs/{job_id}")
def job_status(job_id: str, state: State) -> dict:
    job = state.jobs.get(job_id)
    if job is None:
        raise HTTPException(404, f"no job {job_id!r}")
    return job.to_dict()
