"""Conversations by id: list this key's, start one, read its turns (with the rewritten queries
and citations), delete it. Ids are made by the server; a session belongs to the key and
collection that made it, and is "not found" for any other key.

Plain `def`s: the session store is SQLite (and the first use loads the models), so FastAPI runs
them in its thread pool.
"""

from __future__ import annotations

from fastapi import APIRouter, Request

from serve.state import State

router = APIRouter(prefix="/sessions")
MAX_LISTED = 100


@router.get("")
def list_sessions(state: State, request: Request) -> dict:
    """This key's sessions in this collection, the latest activity first (at most 100): id,
    created, updated, title (the first question, cut to 80 characters) and number of turns."""
    return {"object": "list", "data": state.sessions().recent(request.state.grant.name, MAX_LISTED)}


@router.post("", status_code=201)
def create_session(state: State, request: Request) -> dict:
    """A new, empty session of this key in this collection; chat requests continue it by id."""
    return {"id": state.session(None, request.state.grant), "turns": []}


@router.get("/{session_id}")
def get_session(session_id: str, state: State, request: Request) -> dict:
    state.session(session_id, request.state.grant)  # 404 unless this key made it here
    return {"id": session_id, "turns": state.sessions().turns(session_id)}


@router.delete("/{session_id}")
def delete_session(session_id: str, state: State, request: Request) -> dict:
    state.session(session_id, request.state.grant)
    state.sessions().delete(session_id)
    return {"id": session_id, "deleted": True}
