"""Conversations by id: read one's turns (with the rewritten queries and citations), delete it.

Plain `def`s: the session store is SQLite (and the first use loads the models), so FastAPI runs
them in its thread pool.
"""

from __future__ import annotations

from fastapi import APIRouter, Depends, HTTPException

from serve.state import State, require_api_key

router = APIRouter(prefix="/v1/sessions", dependencies=[Depends(require_api_key)])


@router.get("/{session_id}")
def get_session(session_id: str, state: State) -> dict:
    sessions = state.sessions()
    if not sessions.exists(session_id):
        raise HTTPException(404, f"no session {session_id!r}")
    return {"id": session_id, "turns": sessions.turns(session_id)}


@router.delete("/{session_id}")
def delete_session(session_id: str, state: State) -> dict:
    if not state.sessions().delete(session_id):
        raise HTTPException(404, f"no session {session_id!r}")
    return {"id": session_id, "deleted": True}
