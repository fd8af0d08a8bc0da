"""The embedded generator on ONNX Runtime GenAI: the same model and the same decoding as
rag.generation.TransformersGenerator, several times faster a token on a CPU.

The model's Hugging Face copy (rag.generation.hf_model_dir) is exported once by
onnxruntime-genai's model builder and cached (`~/.cache/ragstack/onnx-genai`). The decoding loop
is ours, not the runtime's: each step's logits go through the transformers engine's own logits
processors (the repetition penalty that ignores the prompt, grounded numbers), so greedy answers
are the transformers engine's (bench/RESULTS.md: the same text on every prompt checked, in
fp32). Greedy steps also check a few tokens guessed from the prompt (prompt lookup: a reply
quotes its sources) in the same pass, keeping those the model's own logits pick, so one step can
give several tokens of the same answer. A LoRA adapter is merged into a cached copy of the model,
which is exported like any other (rag.generation.merged_model_dir).
"""

from __future__ import annotations

import json
import os
import queue
import shutil
import subprocess
import sys
import tempfile
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Literal, get_args

from rag.generation import (
    DEFAULT_CONTEXT_LENGTH,
    DEFAULT_GENERATOR,
    REPETITION_PENALTY,
    Message,
    check_length,
    clean,
    hf_model_dir,
    merged_model_dir,
)
from rag.loading import model_loading
from rag.onnx_logits import keep_last_logits
from rag.paths import cache_dir

# fp32 gives the transformers engine's answers; int4 (weights in 4 bits, int8 arithmetic) is
# faster still but writes other answers (bench/RESULTS.md)
Precision = Literal["fp32", "int4"]
PRECISIONS: tuple[Precision, ...] = get_args(Precision)
_END = object()  # the worker's last item in a stream's queue
# the kept generator's window: its keys and values are allocated whole (46 KB a token for
# SmolLM2-135M, ~190 MB); longer prompts get a generator of their own
KEPT_LENGTH = 4096
# tokens guessed ahead from the prompt and checked in one step (bench/RESULTS.md)
DRAFT_TOKENS = 6  # < KEPT_POSITIONS: a drafted step reads the logits of its 1 + 6 positions


def available() -> bool:
    import importlib.util

    return importlib.util.find_spec("onnxruntime_genai") is not None


def exported_model(hf_dir: str, precision: str = "fp32") -> Path:
    """The ONNX GenAI export of a Hugging Face model directory, made once and cached."""
    import onnxruntime_genai

    if precision not in PRECISIONS:
        raise ValueError(f"unknown precision {precision!r}; choose one of {', '.join(PRECISIONS)}")
    source = Path(hf_dir).resolve()
    slug = str(source).strip("/").replace("/", "_")
    target = cache_dir("onnx-genai") / f"{slug}-{precision}-{onnxruntime_genai.__version__}"
    with model_loading:
        if (target / "genai_config.json").is_file():
            keep_last_logits(target)  # an export made before the edit existed
            return target
        print(f"exporting {source.name} to ONNX ({precision}, once) ...", file=sys.stderr, flush=True)
        target.parent.mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(prefix=f".{target.name}.", dir=target.parent))
        try:
            done = subprocess.run(
                [sys.executable, "-m", "onnxruntime_genai.models.builder", "-i", str(source),
                 "-o", str(staging / "model"), "-p", precision, "-e", "cpu", "-c", str(staging / "tmp")],
                capture_output=True, text=True,
            )
            if done.returncode != 0:
                raise ValueError(f"cannot export {hf_dir} to ONNX: {done.stderr.strip()[-2000:]}")
            keep_last_logits(staging / "model")
            os.replace(staging / "model", target)
        finally:
            shutil.rmtree(staging, ignore_errors=True)
    return target


class OnnxGenerator:
    """Generate in-process with ONNX Runtime GenAI; same interface as TransformersGenerator.

    Args:
        model: the bundled SmolLM2-135M-Instruct (default), a local directory or a hub id of a
            model the onnxruntime-genai builder exports (Llama, Qwen, Phi, Gemma, Mistral, ...).
        precision: "fp32" (the transformers engine's answers) or "int4".
        grounded: as TransformersGenerator: numbers only as the `grounding` text writes them.
        adapter: a LoRA adapter (rag finetune-llm), merged into a cached copy of the model that is
            exported in its stead (rag.generation.merged_model_dir).
    """

    def __init__(
        self,
        model: str = DEFAULT_GENERATOR,
        precision: str = "fp32",
        grounded: bool = False,
        adapter: str | None = None,
    ):
        import onnxruntime_genai as og
        from transformers import AutoConfig, AutoTokenizer

        self.name = model
        self.adapter = adapter
        self.grounded = grounded
        path = merged_model_dir(model, adapter) if adapter else hf_model_dir(model)
        try:
            with model_loading:
                self.tokenizer = AutoTokenizer.from_pretrained(path)
                hf_config = AutoConfig.from_pretrained(path)
        except OSError as err:
            raise ValueError(f"cannot load generator {model!r}: {err}") from err
        config = og.Config(str(exported_model(path, precision)))
        # ONNX Runtime GenAI runs on one thread unless told: half the speed of two cores here
        threads = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
        options = {"intra_op_num_threads": threads}
        config.overlay(json.dumps({"model": {"decoder": {"session_options": options}}}))
        self.model = og.Model(config)
        self.context_length = getattr(hf_config, "max_position_embeddings", None) or DEFAULT_CONTEXT_LENGTH
        self._lock = threading.Lock()  # one generation at a time, as in the transformers engine
        # one generator kept between requests, with the tokens whose keys and values it holds: a
        # new prompt is computed from where it stops sharing them (the system prompt at least)
        self._kept: tuple[object, list[int]] | None = None
        self.reused_tokens = 0  # of the last prompt, read from the kept generator
        self.draft_tokens = DRAFT_TOKENS  # guessed ahead per step; 0 decodes one token a step
        self.drafted_tokens = self.accepted_tokens = 0  # of the last reply

    def count_tokens(self, text: str) -> int:
        return len(self.tokenizer(text, add_special_tokens=False)["input_ids"])

    def stream(
        self,
        messages: list[Message],
        max_tokens: int = 256,
        temperature: float = 0.0,
        grounding: str | None = None,
    ) -> Iterator[str]:
        """The reply piece by piece; with `grounding`, numbers only as that text writes them.

        Generated in a worker thread that holds the lock, as in the transformers engine: a client
        that goes away mid-stream (the page's Stop) leaves this generator suspended, and a lock
        held across its `yield` would block every later request until it is collected."""
        pieces: queue.Queue = queue.Queue()
        stop = threading.Event()

        def run() -> None:
            try:
                with self._lock:
                    tokens: list[int] = []
                    shown = ""
                    for token in self._tokens(messages, max_tokens, temperature, grounding):
                        if stop.is_set():
                            break
                        tokens.append(token)
                        text = self.tokenizer.decode(tokens, skip_special_tokens=True)
                        if not text.endswith("\ufffd") and len(text) > len(shown):  # not half a character
                            pieces.put(text[len(shown) :])
                            shown = text
            except BaseException as err:  # noqa: BLE001 - re-raised in the caller's thread
                pieces.put(err)
            finally:
                pieces.put(_END)

        threading.Thread(target=run, daemon=True).start()
        try:
            while (item := pieces.get()) is not _END:
                if isinstance(item, BaseException):
                    raise item
                yield item
        finally:
            stop.set()  # a consumer that stops early stops the worker at its next token

    def generate_batch(
        self,
        conversations: list[list[Message]],
        max_tokens: int = 256,
        temperature: float = 0.0,
        grounding: list[str] | None = None,
    ) -> list[str]:
        """Replies one after the other: each token is cheap here, padding would only add work."""
        rows = grounding or [None] * len(conversations)
        return [
            clean("".join(self.stream(m, max_tokens, temperature, g)))
            for m, g in zip(conversations, rows, strict=True)
        ]

    def _tokens(
        self, messages: list[Message], max_tokens: int, temperature: float, grounding: str | None
    ) -> Iterator[int]:
        import numpy as np

        prompt = self.tokenizer.apply_chat_template(messages, add_generation_prompt=True, tokenize=False)
        ids = self.tokenizer(prompt, add_special_tokens=False)["input_ids"]
        check_length(self, len(ids), max_tokens)
        eos = self.tokenizer.eos_token_id
        # the transformers engine's processors cost ~11 ms a token in torch here (a third of a
        # token's time); its repetition penalty, the one every answer uses, is done in numpy
        processors = []
        if self.grounded and grounding is not None:
            from rag.grounded_decoding import GroundedNumbers

            processors.append(GroundedNumbers(self.tokenizer, [grounding], len(ids)))
        if temperature > 0:
            from transformers import TemperatureLogitsWarper, TopPLogitsWarper

            processors += [TemperatureLogitsWarper(temperature), TopPLogitsWarper(0.95)]
        generator, held = self._generator_for(ids, max_tokens)
        reply: list[int] = []
        scores = np.array(generator.get_logits(), dtype=np.float32).reshape(-1)

        def pick(scores) -> int:
            """The next token from raw logits, through the transformers engine's processors."""
            penalise_repeats(scores, reply)
            if processors:
                scores = _through(processors, ids + reply, scores)
            if temperature > 0:
                weights = np.exp(scores - scores.max())
                return int(np.random.default_rng().choice(len(scores), p=weights / weights.sum()))
            return int(scores.argmax())

        self.drafted_tokens = self.accepted_tokens = 0
        while len(reply) < max_tokens:
            token = pick(scores)
            if token == eos:
                return
            yield token
            reply.append(token)
            if len(reply) == max_tokens:
                return
            # a greedy reply quotes its sources: the tokens that followed its last few tokens in
            # the prompt are checked in the same step (a pass over 1 + k tokens costs little more
            # than over one), and each is kept only if the model's own logits pick it
            room = min(self.draft_tokens, max_tokens - len(reply) - 1)
            drafts = lookup_draft(ids + reply, room) if temperature == 0 else []
            if eos in drafts:
                drafts = drafts[: drafts.index(eos)]
            accepted: list[int] = []
            try:
                generator.append_tokens(np.array([[token, *drafts]], dtype=np.int32))
                if drafts:
                    logits = np.array(generator.get_output("logits"), dtype=np.float32)
                    logits = logits.reshape(len(drafts) + 1, -1)
                    for row, draft in zip(logits, drafts, strict=False):
                        if pick(row.copy()) != draft:
                            break
                        accepted.append(draft)
                        reply.append(draft)
                    scores = logits[len(accepted)].copy()
                    if len(accepted) < len(drafts):
                        generator.rewind_to(len(held) + 1 + len(accepted))
                else:
                    scores = np.array(generator.get_logits(), dtype=np.float32).reshape(-1)
            except BaseException:
                self._kept = None  # what it holds is no longer known
                raise
            held.extend([token, *accepted])  # before yielding: a consumer may stop at any yield
            self.drafted_tokens += len(drafts)
            self.accepted_tokens += len(accepted)
            yield from accepted

    def _generator_for(self, ids: list[int], max_tokens: int):
        """A generator that has read `ids`, and the list of the tokens it holds (kept in step by
        the caller). Prompts that fit KEPT_LENGTH reuse the kept generator: rewound to the prefix
        it shares with `ids` (the chat template and system prompt, ~100 tokens; a whole earlier
        turn), only the rest is computed. Rewinding gives the same logits as a fresh start."""
        import numpy as np
        import onnxruntime_genai as og

        if len(ids) + max_tokens + 1 > KEPT_LENGTH:
            params = og.GeneratorParams(self.model)
            params.set_search_options(max_length=len(ids) + max_tokens + 1)
            generator = og.Generator(self.model, params)
            generator.append_tokens(np.array([ids], dtype=np.int32))
            self.reused_tokens = 0
            return generator, list(ids)
        generator, held = self._kept or (None, [])
        self._kept = None  # until it has read the prompt: an error half-way leaves nothing stale
        shared = 0
        for kept_token, token in zip(held, ids[:-1], strict=False):  # one left to read, for logits
            if kept_token != token:
                break
            shared += 1
        if generator is None or shared == 0:
            params = og.GeneratorParams(self.model)
            params.set_search_options(max_length=KEPT_LENGTH)
            generator, shared = og.Generator(self.model, params), 0
        else:
            generator.rewind_to(shared)
        self.reused_tokens = shared
        generator.append_tokens(np.array([ids[shared:]], dtype=np.int32))
        held = list(ids)
        self._kept = (generator, held)
        return generator, held


def lookup_draft(sequence: list[int], count: int, longest: int = 3) -> list[int]:
    """Up to `count` tokens that followed the last occurrence of the sequence's last `longest`
    (down to 2) tokens earlier in it: the prompt-lookup guess at what a reply quoting its sources
    writes next."""
    if count <= 0:
        return []
    for size in range(longest, 1, -1):
        if len(sequence) <= size:
            continue
        tail = sequence[-size:]
        for start in range(len(sequence) - size - 1, -1, -1):
            if sequence[start : start + size] == tail:
                return sequence[start + size : start + size + count]
    return []


def penalise_repeats(scores, reply: list[int], penalty: float = REPETITION_PENALTY) -> None:
    """transformers' RepetitionPenaltyLogitsProcessor over the reply's tokens, in place and in
    the same float32 arithmetic (so greedy answers are the transformers engine's)."""
    if reply:
        import numpy as np

        seen = np.fromiter(set(reply), dtype=np.int64)
        picked = scores[seen]
        scores[seen] = np.where(picked < 0, picked * np.float32(penalty), picked / np.float32(penalty))


def _through(processors, sequence: list[int], scores):
    """Scores through transformers logits processors (grounded numbers, sampling warpers)."""
    import numpy as np
    import torch

    out = torch.from_numpy(scores).reshape(1, -1)
    for processor in processors:
        out = processor(torch.tensor([sequence]), out)
    return out.reshape(-1).numpy().astype(np.float32, copy=False)
