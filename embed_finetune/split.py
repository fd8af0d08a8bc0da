"""The held-out split: queries, not chunks, are set aside, so no held-out question is trained on.

Queries are assigned by a hash of their normalised text, so the same question under two ids
(or asked of two chunks) falls on one side only, and the split does not change between runs.
"""

from __future__ import annotations

import hashlib

from embed_finetune.pairs import PairSet
from embed_finetune.synthetic import normalise


def _bucket(query: str, seed: int) -> float:
    digest = hashlib.blake2b(f"{seed}\x00{normalise(query) or query}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big") / 2**64


def split_held_out(pair_set: PairSet, fraction: float, seed: int = 0) -> tuple[PairSet, PairSet]:
    """(training pairs, held-out pairs), about `fraction` of the distinct queries held out."""
    if not 0 < fraction < 1:
        raise ValueError(f"the held-out fraction must be between 0 and 1, got {fraction}")
    held = {p.query_id for p in pair_set.pairs if _bucket(p.query, seed) < fraction}
    train = {p.query_id for p in pair_set.pairs} - held
    if not held or not train:
        raise ValueError(
            f"{len(pair_set.queries())} queries are too few to hold out {fraction:.0%} and still train"
        )
    return pair_set.subset(train), pair_set.subset(held)
