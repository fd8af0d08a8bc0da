"""FAISS indexes named by factory strings, built from the stored vectors.

Every generation keeps its vectors, so any index type can be rebuilt after a deletion:
FAISS structures such as HNSW do not support removing vectors in place.
"""

from __future__ import annotations

import math
from pathlib import Path

import faiss
import numpy as np

HNSW_EF_SEARCH = 64  # efSearch=64 gave recall@10 0.98 against Flat at 100k (bench/query.py)
IVF_NPROBE = 16


def choose_factory(n_vectors: int, dimension: int) -> str:
    """The factory string used when the user asks for `auto`: exact search while it is cheap."""
    if n_vectors < 50_000:
        return "Flat"
    if n_vectors < 2_000_000:
        return "HNSW32"
    nlist = 1 << round(math.log2(4 * math.sqrt(n_vectors)))
    return f"IVF{nlist},PQ{dimension // 8}"


def build(vectors: np.ndarray, factory: str) -> faiss.Index:
    """Build an inner-product index of `factory` type over `vectors` (row i gets id i)."""
    vectors = np.ascontiguousarray(vectors, dtype=np.float32)
    n, d = vectors.shape
    try:
        index = faiss.index_factory(d, factory, faiss.METRIC_INNER_PRODUCT)
    except RuntimeError as err:
        raise ValueError(f"{factory!r} is not a FAISS factory string FAISS accepts: {err}") from err
    if not index.is_trained:
        need = _training_points(index)
        if n < need:
            raise ValueError(
                f"index type {factory!r} needs at least {need} chunks to train, the index has {n}; "
                "use --index-type Flat or HNSW32, or a smaller IVF list count"
            )
        index.train(vectors)
    if n:
        index.add(vectors)
    return index


def _training_points(index: faiss.Index) -> int:
    ivf = faiss.try_extract_index_ivf(index)
    if ivf is not None:
        return ivf.nlist
    return 256  # PQ/SQ codebooks


def save(index: faiss.Index, path: Path) -> None:
    faiss.write_index(index, str(path))


def load(path: Path) -> faiss.Index:
    """Load an index memory-friendly, move it to a GPU when faiss-gpu sees one."""
    index = faiss.read_index(str(path))
    _set_search_params(index)
    if hasattr(faiss, "StandardGpuResources") and faiss.get_num_gpus() > 0:
        try:
            index = faiss.index_cpu_to_gpu(faiss.StandardGpuResources(), 0, index)
        except RuntimeError:
            pass  # HNSW and some others have no GPU version: stay on the CPU
    return index


def _set_search_params(index: faiss.Index) -> None:
    hnsw = getattr(faiss.downcast_index(index), "hnsw", None)
    if hnsw is not None:
        hnsw.efSearch = HNSW_EF_SEARCH
    ivf = faiss.try_extract_index_ivf(index)
    if ivf is not None:
        ivf.nprobe = IVF_NPROBE


def search(index: faiss.Index, queries: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """FAISS's contract: (scores, rows), each of shape (len(queries), k), row -1 when missing."""
    queries = np.ascontiguousarray(np.atleast_2d(queries), dtype=np.float32)
    k = min(k, index.ntotal)
    if k == 0:
        empty = np.zeros((len(queries), 0))
        return empty.astype(np.float32), empty.astype(np.int64)
    return index.search(queries, k)
