"""The service behind one app: its collections, the keys that may use them, the shared models and
metrics. On `app.state.rag`; handlers reach a collection through `open`, which checks the key."""

from __future__ import annotations

import threading

from fastapi import HTTPException

from rag.collections import DEFAULT, check_name, in_collection, list_collections
from rag.embedding import Embedder
from rag.generation import Generator
from rag.settings import Settings
from serve.auth import OPEN, Grant, KeyRing
from serve.metrics import Metrics
from serve.state import AppState, Models

# what today's clients send as `model` for the default collection
DEFAULT_MODEL_NAMES = frozenset({"", DEFAULT, "ragstack"})


class Service:
    """Collections (each an AppState) opened on first use; the default one is `settings.index`."""

    def __init__(
        self, settings: Settings, generator: Generator | None = None, embedder: Embedder | None = None
    ):
        self.settings = settings
        self.keys = KeyRing.from_settings(settings)
        self.models = Models(settings, generator, embedder)
        self.metrics = Metrics()
        self._collections: dict[str, AppState] = {}
        self._lock = threading.Lock()

    def open(self, name: str | None, grant: Grant, write: bool = False) -> AppState:
        """Collection `name` (None: the default) for a request with `grant`: 403 when the key
        may not read it (or write it, for `write`), 404 when it does not exist. A key that may
        write creates a collection by writing to it."""
        name = name or DEFAULT
        if not grant.reads(name):
            raise HTTPException(403, f"this API key may not use collection {name[:80]!r}")
        if write and not grant.write:
            raise HTTPException(403, f"this API key may read collection {name!r} but not change it")
        try:
            check_name(name)
        except ValueError as err:
            raise HTTPException(404, str(err)) from None
        with self._lock:
            state = self._collections.get(name)
            if state is None:
                settings = in_collection(self.settings, name)
                if name != DEFAULT and not write and not settings.index.parent.is_dir():
                    raise HTTPException(404, f"no collection {name!r} (GET /v1/models lists them)")
                state = self._collections[name] = AppState(settings, self.models, self.metrics)
            return state

    def default(self) -> AppState:
        """The default collection, whoever asks (for /health: the generation it serves)."""
        return self.open(None, OPEN)

    def collection_for_model(self, model: str | None) -> str:
        """The collection a chat request's `model` names: a collection's name picks it; anything
        else (the generator's name, "ragstack", what a client sends by habit) the default one."""
        if model and model not in DEFAULT_MODEL_NAMES and model in self.names():
            return model
        return DEFAULT

    def names(self, grant: Grant | None = None) -> list[str]:
        """The collections that exist, those `grant` may read when given."""
        return [n for n in list_collections(self.settings) if grant is None or grant.reads(n)]

    def shutdown(self) -> None:
        """Queued jobs are dropped, running ones waited for."""
        for state in list(self._collections.values()):
            state.jobs.shutdown()
