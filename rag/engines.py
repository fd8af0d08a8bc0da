"""Choosing the generator: the one place an engine name becomes a generator (CLI, server, evals).

  onnx          the embedded default: rag.onnx_generation (ONNX Runtime GenAI); merges adapters
  transformers  in-process transformers (rag.generation.TransformersGenerator); merges adapters
  openai        any OpenAI-compatible server, or several replicas of one (rag.replicas)
  vllm          a running vLLM, or one started for the command (rag.vllm_server)
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Literal, get_args

from rag.generation import DEFAULT_GENERATOR, Generator, OpenAIGenerator, TransformersGenerator, hf_model_dir

Engine = Literal["onnx", "transformers", "openai", "vllm"]
ENGINES: tuple[Engine, ...] = get_args(Engine)


def load_generator(
    engine: str = "transformers",
    model: str = DEFAULT_GENERATOR,
    base_url: str | None = None,
    api_key: str | None = None,
    adapter: str | None = None,
    vllm_python: str | None = None,
    vllm_log: Path | None = None,
    grounded: bool = False,
    precision: str = "fp32",
    vllm_compile: bool | None = None,
    vllm_parallel: dict[str, int] | None = None,
) -> Generator:
    """The generator for an engine: the one place an engine is chosen (CLI, server, evals).

    transformers runs in-process and merges an `adapter` in; onnx runs in-process on ONNX
    Runtime GenAI in `precision`, the adapter merged into a cached copy of the model
    (transformers instead where there is no onnxruntime-genai); openai talks to a running server at
    `base_url`; vllm talks to a running vLLM at `base_url`, or, without one, starts vLLM from
    `vllm_python` (rag.vllm_server) serving the model and the adapter, with `vllm_parallel`
    (vLLM's parallel sizes); `close()` on the returned generator stops it. Several base URLs,
    comma-separated, are replicas of one model (rag.replicas). `grounded`: the embedded engine
    decodes numbers from the sources only (rag.grounded_decoding); the other engines leave it to
    the claim check.
    """
    if engine == "onnx":
        from rag import onnx_generation

        if onnx_generation.available():
            return onnx_generation.OnnxGenerator(model, precision, grounded=grounded, adapter=adapter)
        logging.getLogger(__name__).info("onnx engine: no onnxruntime-genai, so transformers generates")
        engine = "transformers"
    if engine == "transformers":
        return TransformersGenerator(model, adapter=adapter, grounded=grounded)
    if engine == "openai" or (engine == "vllm" and base_url):
        if not base_url:
            raise ValueError(f"the {engine} engine needs a base URL (RAG_LLM_BASE_URL)")
        urls = [u.strip() for u in base_url.split(",") if u.strip()]
        if len(urls) > 1:
            from rag.replicas import ReplicaPool

            return ReplicaPool(urls, model, api_key)
        return OpenAIGenerator(urls[0], model, api_key)
    if engine == "vllm":
        from rag.vllm_server import VLLMServer

        try:
            server = VLLMServer(
                model, hf_model_dir(model), vllm_python, log=vllm_log, adapter=adapter,
                compile=vllm_compile, parallel=vllm_parallel,
            )
        except (RuntimeError, TimeoutError) as err:
            raise ValueError(f"vLLM did not start: {err}") from None
        return OpenAIGenerator(server.base_url, server.served_name, server=server)
    raise ValueError(f"unknown engine {engine!r}; choose one of {', '.join(ENGINES)}")


def open_generator(settings, vllm_log: Path | None = None) -> Generator:
    """The generator rag.settings.Settings describe (engine, llm_model, adapter, URLs, grounding)."""
    return load_generator(
        settings.engine,
        settings.llm_model,
        settings.llm_base_url,
        settings.llm_api_key,
        settings.llm_adapter,
        settings.vllm_python,
        vllm_log,
        settings.grounded_decoding,
        settings.llm_precision,
        settings.vllm_compile,
        {
            "tensor-parallel-size": settings.vllm_tensor_parallel,
            "pipeline-parallel-size": settings.vllm_pipeline_parallel,
            "data-parallel-size": settings.vllm_data_parallel,
        },
    )


def close_generator(generator: Generator) -> None:
    """Release what a generator holds beyond memory (a vLLM child process)."""
    close = getattr(generator, "close", None)
    if close is not None:
        close()
