"""Milvus as a generation's search engine: dense vectors and BM25 in one Milvus collection.

The index directory stays what it is (CURRENT, manifest, records, vectors); with
`store_backend = "milvus"` a generation's FAISS file and BM25 folder are replaced by a Milvus
collection named after it (`<prefix>_gen_000007`), on any Milvus URI: a milvus-lite file for a
laptop, a server for a cluster. A generation's collection is written whole before CURRENT moves
and never changed after, so the atomic swap is the same as the local backend's; the alias
`<prefix>` is then moved to it (Milvus's own atomic switch) for readers outside ragstack.

BM25 runs in Milvus (a BM25 function over a text field, fused with the dense list by our RRF),
fed the words of indexes.words so that both backends rank by the same words: Milvus's own
analyzers know only "standard" and "jieba", so each word is sent as a short hash, which its
standard tokenizer keeps whole whatever the script.
"""

from __future__ import annotations

import hashlib
import re
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from indexes import bm25
from indexes.errors import MilvusUnavailable

if TYPE_CHECKING:
    from pymilvus import MilvusClient

LOCAL, MILVUS = "local", "milvus"
HNSW_EF_SEARCH = 64  # as indexes.dense: the same recall at the same cost
IVF_NPROBE = 16
BM25_K1, BM25_B = 1.5, 0.75  # bm25s's: both backends rank alike (scores differ in scale)
_INSERT_BATCH = 2000
TIMEOUT_S = 30  # per call: pymilvus would otherwise retry a lost server for ever
_MAX_TEXT = 65535  # a VARCHAR's bound: words past it are not BM25-indexed (~4,600 words a chunk)
_clients: dict[str, MilvusClient] = {}
_clients_lock = threading.Lock()


def default_uri(index_root: Path) -> str:
    """milvus-lite in the index directory: one file, no server."""
    return str(Path(index_root).expanduser().resolve() / "milvus.db")


def collection_prefix(index_root: Path) -> str:
    """A Milvus name for one index directory: its folder's name, made safe, and a hash of its path
    (two indexes can share one Milvus server)."""
    path = str(Path(index_root).expanduser().resolve())
    name = re.sub(r"[^A-Za-z0-9_]", "_", Path(path).name)[:32]
    return f"rag_{name}_{hashlib.blake2b(path.encode(), digest_size=4).hexdigest()}"


def generation_collection(prefix: str, generation: str) -> str:
    return f"{prefix}_{generation.replace('-', '_')}"


def client(uri: str) -> MilvusClient:
    """One client per URI and process: milvus-lite lets one process open a file."""
    with _clients_lock:
        if uri not in _clients:
            try:
                from pymilvus import MilvusClient
            except ImportError as err:
                raise MilvusUnavailable(
                    "the Milvus backend needs pymilvus (and milvus-lite for a local file): "
                    "pip install 'ragstack[scale]'"
                ) from err
            try:
                _clients[uri] = MilvusClient(uri)
            except Exception as err:  # pymilvus raises its own exception types for every cause
                server = uri.startswith(("http://", "https://", "tcp://"))
                hint = "" if server else (
                    " (a milvus-lite file can be open in one process at a time: stop the other, or "
                    "use a Milvus server URI)"
                )
                raise MilvusUnavailable(f"cannot open Milvus at {uri}: {err}{hint}") from err
        return _clients[uri]


def close(uri: str) -> None:
    """Close this process's client of `uri` (a milvus-lite file is then free for another process)."""
    with _clients_lock:
        opened = _clients.pop(uri, None)
    if opened is not None:
        opened.close()


def milvus_index(factory: str, n_vectors: int) -> tuple[str, dict]:
    """The Milvus index type and build parameters for a FAISS factory string."""
    match = re.fullmatch(r"HNSW(\d+)(?:,Flat)?", factory)
    if factory == "Flat":
        return "FLAT", {}
    if match:
        return "HNSW", {"M": int(match[1]), "efConstruction": 40}
    match = re.fullmatch(r"IVF(\d+),(Flat|PQ(\d+)|SQ8)", factory)
    if match:
        nlist = int(match[1])
        if n_vectors < nlist:  # as indexes.dense refuses it: same settings, same outcome
            raise ValueError(
                f"index type {factory!r} needs at least {nlist} chunks to train, the index has "
                f"{n_vectors}; use --index-type Flat or HNSW32, or a smaller IVF list count"
            )
        if match[2] == "Flat":
            return "IVF_FLAT", {"nlist": nlist}
        if match[2] == "SQ8":
            return "IVF_SQ8", {"nlist": nlist}
        # milvus-lite 3.2 takes IVF_PQ but does not build it yet and searches exhaustively; a
        # Milvus server builds it
        return "IVF_PQ", {"nlist": nlist, "m": int(match[3]), "nbits": 8}
    raise ValueError(
        f"{factory!r} is not a FAISS factory string with a Milvus equivalent; use Flat, HNSW<M>, "
        "IVF<n>,Flat, IVF<n>,SQ8 or IVF<n>,PQ<m> with --backend milvus"
    )


def word_text(words: list[str]) -> str:
    """The words as Milvus's standard tokenizer will split them back: one hash per word."""
    text = " ".join("w" + hashlib.blake2b(w.encode(), digest_size=6).hexdigest() for w in words)
    return text if len(text) <= _MAX_TEXT else text[:_MAX_TEXT].rsplit(" ", 1)[0]


def build(
    uri: str, name: str, vectors: np.ndarray, texts: Sequence[str], factory: str, scheme: str
) -> None:
    """Create collection `name` holding row i = (vectors[i], BM25 words of texts[i]), indexed and
    loaded; an earlier collection of that name (a crashed writer's) is replaced."""
    from pymilvus import DataType, Function, FunctionType

    drop(uri, name)
    milvus = client(uri)
    schema = milvus.create_schema(auto_id=False)
    schema.add_field("row", DataType.INT64, is_primary=True)
    schema.add_field("vector", DataType.FLOAT_VECTOR, dim=int(vectors.shape[1]))
    schema.add_field("words", DataType.VARCHAR, max_length=_MAX_TEXT, enable_analyzer=True,
                     analyzer_params={"tokenizer": "standard"})
    schema.add_field("sparse", DataType.SPARSE_FLOAT_VECTOR)
    schema.add_function(Function(name="bm25", function_type=FunctionType.BM25,
                                 input_field_names=["words"], output_field_names=["sparse"]))
    index_type, params = milvus_index(factory, len(vectors))
    index_params = milvus.prepare_index_params()
    index_params.add_index("vector", index_type=index_type, metric_type="IP", params=params)
    index_params.add_index("sparse", index_type="SPARSE_INVERTED_INDEX", metric_type="BM25",
                           params={"bm25_k1": BM25_K1, "bm25_b": BM25_B})
    milvus.create_collection(name, schema=schema, index_params=index_params)
    words = bm25.tokenize(list(texts), scheme)
    for start in range(0, len(vectors), _INSERT_BATCH):
        stop = min(start + _INSERT_BATCH, len(vectors))
        milvus.insert(name, [
            {"row": row, "vector": vectors[row].tolist(), "words": word_text(words[row])}
            for row in range(start, stop)
        ])
    milvus.flush(name)
    milvus.load_collection(name)


def point_alias(uri: str, alias: str, name: str) -> None:
    """Move (or create) `alias` to collection `name`: one atomic switch in Milvus."""
    milvus = client(uri)
    if alias in milvus.list_aliases().get("aliases", []):
        milvus.alter_alias(name, alias)
    else:
        milvus.create_alias(name, alias)


def drop(uri: str, name: str) -> None:
    """Drop collection `name` if it is there."""
    milvus = client(uri)
    if milvus.has_collection(name):
        milvus.drop_collection(name)


class MilvusGeneration:
    """One published generation's collection; searches follow FAISS's contract, numpy out."""

    def __init__(self, uri: str, name: str, n_rows: int, factory: str, scheme: str):
        self.uri, self.name, self.scheme = uri, name, scheme
        self._client = client(uri)
        self._dense_params: dict = {"metric_type": "IP"}
        if factory.startswith("HNSW"):
            self._dense_params["params"] = {"ef": HNSW_EF_SEARCH}
        elif factory.startswith("IVF"):
            self._dense_params["params"] = {"nprobe": IVF_NPROBE}
        if not self._client.has_collection(name):
            raise FileNotFoundError(f"Milvus collection {name} is gone from {uri}")
        if "Loaded" not in str(self._client.get_load_state(name).get("state")):
            self._client.load_collection(name, timeout=TIMEOUT_S)  # e.g. a milvus-lite file reopened
        # what Milvus holds, asked once: a generation's collection never changes after publishing
        self.ntotal = int(self._client.query(name, filter="", output_fields=["count(*)"])[0]["count(*)"])
        if self.ntotal != n_rows:
            raise FileNotFoundError(f"Milvus collection {name} holds {self.ntotal} rows, not {n_rows}")

    @property
    def index_type(self) -> str:
        """The dense index as Milvus describes it ("FLAT", "HNSW", ...)."""
        return self._client.describe_index(self.name, "vector")["index_type"]

    def search(self, queries: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        """Dense: (scores, rows) of shape (len(queries), k), row -1 when missing."""
        queries = np.ascontiguousarray(np.atleast_2d(queries), dtype=np.float32)
        k = min(k, self.ntotal)
        hits = self._client.search(
            self.name, data=queries.tolist(), anns_field="vector", limit=max(k, 1),
            output_fields=["row"], search_params=self._dense_params, timeout=TIMEOUT_S,
        ) if k else [[] for _ in queries]
        return _arrays(hits, len(queries), k)

    def search_words(
        self, queries: list[str], k: int, allowed_rows: np.ndarray | None = None
    ) -> tuple[np.ndarray, np.ndarray]:
        """BM25: (scores, rows) as `indexes.bm25.search` gives them; queries without a known
        word get no rows."""
        k = min(k, self.ntotal)
        texts = [word_text(w) for w in bm25.tokenize(queries, self.scheme)]
        asked = [i for i, t in enumerate(texts) if t]
        hits: list = [[] for _ in queries]
        if k and asked:
            where = "" if allowed_rows is None else f"row in {[int(r) for r in allowed_rows]}"
            found = self._client.search(
                self.name, data=[texts[i] for i in asked], anns_field="sparse", limit=k,
                output_fields=["row"], filter=where, search_params={"metric_type": "BM25"},
                timeout=TIMEOUT_S,
            )
            for i, h in zip(asked, found, strict=True):
                hits[i] = h
        scores, rows = _arrays(hits, len(queries), k)
        return np.abs(scores), rows  # milvus-lite reports BM25 negated; the order is right


def _arrays(hits, n_queries: int, k: int) -> tuple[np.ndarray, np.ndarray]:
    scores = np.zeros((n_queries, k), dtype=np.float32)
    rows = np.full((n_queries, k), -1, dtype=np.int64)
    for q, found in enumerate(hits):
        for i, hit in enumerate(list(found)[:k]):
            rows[q, i] = hit["entity"]["row"] if "entity" in hit else hit["id"]
            scores[q, i] = hit["distance"]
    return scores, rows
