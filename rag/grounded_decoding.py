"""Grounded decoding: the embedded generator may write a number only if its prompt has it.

Asked "How many points did the defense surrender?" over a source that says 308, SmolLM2-135M
writes "2 points": the sentence shape is copied, the figure is not. This logits processor lets a
number be generated only while it is (a prefix of) a number written in the prompt (the sources
and the question), and lets it end only where that number ends, so "30" cannot stop short of
"308". A number right after "[" is a citation and may be any small source number.

Tokens are looked at as text, so it works for any tokenizer: SmolLM2 writes digits one token at
a time; tokenizers with multi-digit tokens are checked by the same rule on each candidate.
"""

from __future__ import annotations

import re
from functools import lru_cache

import torch
from transformers import LogitsProcessor

_RUN = re.compile(r"\d[\d,.]*")
_CITING = re.compile(r"\[(?:\d+,\s*)*$")
MAX_CITATION = 20  # [1] .. [20]: more sources than any answer is given
TAIL_TOKENS = 16  # the generated tokens decoded to find the number being written


def allowed_numbers(text: str) -> tuple[frozenset[str], frozenset[str]]:
    """(numbers as written in `text`, and every prefix of them); "1,577" also allows 1577."""
    complete = set()
    for match in _RUN.finditer(text):
        number = match.group(0).rstrip(",.")
        complete |= {number, number.replace(",", "")}
    prefixes = {number[:i] for number in complete for i in range(1, len(number) + 1)}
    return frozenset(complete), frozenset(prefixes)


@lru_cache(maxsize=4)
def _vocabulary(tokenizer) -> tuple[list[str], torch.Tensor, list[int]]:
    """Each token's text; a mask of the tokens that neither hold a digit nor start with , or .
    (they can only end a number); and the ids of the others, checked one by one."""
    texts = tokenizer.batch_decode([[i] for i in range(len(tokenizer))])
    special = [i for i, t in enumerate(texts) if re.search(r"\d", t) or t[:1] in (",", ".")]
    plain = torch.ones(len(texts), dtype=torch.bool)
    plain[special] = False
    return texts, plain, special


class GroundedNumbers(LogitsProcessor):
    """Per row of a batch, numbers only from that row's grounding text.

    Args:
        tokenizer: the generator's tokenizer.
        grounding: each row's sources and question as one text, in batch order (not the whole
            prompt: its "[1]" labels and page numbers would allow "2 points").
        prompt_length: tokens of (padded) prompt before the generated ones.
    """

    def __init__(self, tokenizer, grounding: list[str], prompt_length: int):
        self.tokenizer = tokenizer
        self.allowed = [allowed_numbers(text) for text in grounding]
        self.prompt_length = prompt_length
        self.texts, self.plain, self.special = _vocabulary(tokenizer)
        citations = [str(n) for n in range(1, MAX_CITATION + 1)]
        self.citation = (frozenset(citations), frozenset(c[:i] for c in citations for i in (1, len(c))))

    def __call__(self, input_ids: torch.LongTensor, scores: torch.FloatTensor) -> torch.FloatTensor:
        for row in range(input_ids.shape[0]):
            generated = input_ids[row, self.prompt_length :][-TAIL_TOKENS:].tolist()
            tail = self.tokenizer.decode(generated, skip_special_tokens=True)
            banned = [i for i in self.special if not self._fits(row, tail + self.texts[i], len(tail))]
            runs = list(_RUN.finditer(tail))
            if runs and runs[-1].end() == len(tail) and not self._closes(row, tail, runs[-1]):
                keep = ~self.plain  # the number must go on: no token that would end it
                keep[banned] = False
                if keep.any():  # never leave the model without a token
                    scores[row, ~keep.to(scores.device)] = -float("inf")
            elif banned and len(banned) < len(self.special):
                scores[row, banned] = -float("inf")
        return scores

    def _numbers(self, row: int, text: str, run: re.Match) -> tuple[frozenset[str], frozenset[str]]:
        return self.citation if _CITING.search(text[: run.start()]) else self.allowed[row]

    def _closes(self, row: int, text: str, run: re.Match) -> bool:
        """May this number end here?"""
        complete, _ = self._numbers(row, text, run)
        return run.group(0).rstrip(",.") in complete

    def _fits(self, row: int, text: str, new_from: int) -> bool:
        """Does every number that the candidate token writes into (`text[new_from:]`) stay
        within the allowed ones: complete where it ends, a prefix where it goes on?"""
        for run in _RUN.finditer(text):
            if run.end() < new_from:
                continue  # ended before this token: already decided
            complete, prefixes = self._numbers(row, text, run)
            key = run.group(0).rstrip(",.")
            if run.end() < len(text) and key not in complete:
                return False  # this token ends it short of any allowed number
            if run.end() == len(text) and run.group(0) not in prefixes and key not in complete:
                return False  # it goes on to a number the prompt does not have
        return True
