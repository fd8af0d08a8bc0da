"""The collections a key may use, with their document counts, and whether it may change them: what
a client (the web page) offers to pick from before it asks anything."""

from __future__ import annotations

from fastapi import APIRouter, Request

router = APIRouter()


@router.get("/collections")
def list_collections(request: Request) -> dict:
    """Each collection this key reads, with its number of documents (read from the records
    alone: nothing is loaded), and `write`: whether the key may upload, delete and re-index."""
    service, grant = request.app.state.rag, request.state.grant
    data = [
        {"name": name, "documents": len(service.open(name, grant).documents())}
        for name in service.names(grant)
    ]
    return {"object": "list", "data": data, "write": grant.write}
