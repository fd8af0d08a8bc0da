"""API keys: who may call, which collections each key reads, and whether it may write.

Keys come from `RAG_API_KEYS` (comma-separated, full access) and from a keys file
(`RAG_KEYS_FILE`, TOML):

    [[keys]]
    key = "sk-finance-reader"
    name = "finance-team"          # optional: what sessions and logs call the key
    collections = ["finance"]      # "*" for all; "default" is the index `--index` names
    write = false                  # upload, delete and re-index

With no key configured at all the service is open (for a laptop); `rag serve` says so.

The check is an ASGI middleware, so it runs before any handler reads the body: a request
without a valid key costs a header comparison, whatever it carries. Every path needs the key,
/docs and /openapi.json included, but /health and the web page (/ and /ui/...: `is_open`), which
hold no data: every request the page makes for data needs the key like any other client's.
"""

from __future__ import annotations

import hashlib
import hmac
import tomllib
from dataclasses import dataclass
from pathlib import Path

from starlette.types import ASGIApp, Receive, Scope, Send

from serve.errors import error_response

OPEN_PATHS = frozenset({"/health", "/"})
OPEN_PREFIX = "/ui/"  # the web page's scripts and styles


@dataclass(frozen=True)
class Grant:
    """What one key may do. `collections` None means every collection."""

    name: str
    collections: frozenset[str] | None = None
    write: bool = True

    def reads(self, collection: str) -> bool:
        return self.collections is None or collection in self.collections


OPEN = Grant("anonymous")  # the grant of every request when no key is configured
# an open path's grant when keys are configured: should a data route ever answer there, it
# reads no collection and writes nothing
NOBODY = Grant("anonymous", collections=frozenset(), write=False)


def is_open(path: str) -> bool:
    """Whether `path` is served without a key."""
    return path in OPEN_PATHS or path.startswith(OPEN_PREFIX)


def _digest(key: str) -> bytes:
    return hashlib.sha256(key.encode()).digest()


class KeyRing:
    """The configured keys, held as digests and compared in constant time."""

    def __init__(self, grants: dict[str, Grant]):
        self._grants = [(_digest(key), grant) for key, grant in grants.items()]

    @classmethod
    def from_settings(cls, settings) -> KeyRing:
        grants = {
            key: Grant(f"key-{hashlib.sha256(key.encode()).hexdigest()[:12]}")
            for key in (k.strip() for k in settings.api_keys.split(","))
            if key
        }
        if settings.keys_file is not None:
            grants.update(read_keys_file(Path(settings.keys_file)))
        return cls(grants)

    @property
    def enabled(self) -> bool:
        return bool(self._grants)

    def grant(self, key: str) -> Grant | None:
        """The key's grant; every configured key is compared, so timing tells nothing."""
        given, found = _digest(key), None
        for digest, grant in self._grants:
            if hmac.compare_digest(given, digest):
                found = grant
        return found


def read_keys_file(path: Path) -> dict[str, Grant]:
    """Keys → grants from a TOML keys file; ValueError naming the entry that is wrong."""
    try:
        entries = tomllib.loads(path.read_text()).get("keys", [])
    except (OSError, tomllib.TOMLDecodeError) as err:
        raise ValueError(f"cannot read keys file {path}: {err}") from err
    grants = {}
    for n, entry in enumerate(entries, 1):
        key = str(entry.get("key", "")).strip()
        collections = entry.get("collections", ["*"])
        if not key or not isinstance(collections, list):
            raise ValueError(f"keys file {path}, entry {n}: needs key = \"...\" and collections = [...]")
        scope = None if "*" in collections else frozenset(map(str, collections))
        name = str(entry.get("name") or f"key-{hashlib.sha256(key.encode()).hexdigest()[:12]}")
        grants[key] = Grant(name, scope, bool(entry.get("write", False)))
    return grants


class AuthMiddleware:
    """Answers 401 before the app sees a request without a valid `Authorization: Bearer KEY`;
    a valid key's Grant rides on the request as `request.state.grant`."""

    def __init__(self, app: ASGIApp, keys: KeyRing):
        self.app, self.keys = app, keys

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        grant: Grant | None = OPEN
        if self.keys.enabled and is_open(scope["path"]):
            grant = NOBODY
        elif self.keys.enabled:
            grant = self.keys.grant(_bearer(scope))
            if grant is None:
                response = error_response(401, "missing or wrong API key: send Authorization: Bearer KEY")
                await response(scope, receive, send)
                return
        scope.setdefault("state", {})["grant"] = grant
        await self.app(scope, receive, send)


def _bearer(scope: Scope) -> str:
    """The key of an `Authorization: Bearer KEY` header; "" for anything else (a bare key too)."""
    for name, value in scope["headers"]:
        if name == b"authorization":
            scheme, _, key = value.decode("latin-1").partition(" ")
            return key.strip() if scheme.lower() == "bearer" else ""
    return ""
