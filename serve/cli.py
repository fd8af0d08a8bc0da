"""`rag serve`: parse flags, start the engine if it is vLLM, run uvicorn."""

from __future__ import annotations

import signal
from pathlib import Path
from typing import Annotated

import typer

from rag.settings import load_settings


def serve(
    index: Annotated[Path | None, typer.Option(help="Index directory [env RAG_INDEX]")] = None,
    host: Annotated[str | None, typer.Option(help="Address to listen on [default 127.0.0.1]")] = None,
    port: Annotated[int | None, typer.Option(help="Port [default 8000]")] = None,
    engine: Annotated[str | None, typer.Option(help="onnx (default), transformers, vllm or openai")] = None,
    llm_model: Annotated[
        str | None, typer.Option("--llm", help="Generator: bundled name, dir or hub id")
    ] = None,
    adapter: Annotated[
        Path | None, typer.Option(help="LoRA adapter from rag finetune-llm (every engine but openai)")
    ] = None,
    log: Annotated[Path | None, typer.Option(help="vLLM's log file (engine vllm)")] = None,
    llm_base_url: Annotated[
        str | None,
        typer.Option("--base-url", help="OpenAI-compatible server(s), comma-separated (openai, vllm)"),
    ] = None,
    tensor_parallel_size: Annotated[int | None, typer.Option(help="vLLM: GPUs per model replica")] = None,
    pipeline_parallel_size: Annotated[int | None, typer.Option(help="vLLM: pipeline stages")] = None,
    data_parallel_size: Annotated[int | None, typer.Option(help="vLLM: model replicas")] = None,
    ui: Annotated[
        bool | None, typer.Option("--ui/--no-ui", help="Serve the web page at / [env RAG_UI]")
    ] = None,
    runs: Annotated[
        Path | None, typer.Option(help="Eval run directories the web page lists [env RAG_RUNS_DIR]")
    ] = None,
) -> None:
    """Serve the index over HTTP: OpenAI-compatible chat, search, documents, sessions."""
    import uvicorn

    from rag.engines import close_generator, open_generator
    from rag.remote import announce, withdraw
    from rag.terminal import fail, out, run_guarded
    from serve.app import create_app
    from serve.auth import KeyRing

    settings = run_guarded(
        lambda: load_settings(
            index=index, host=host, port=port, engine=engine, llm_model=llm_model,
            llm_adapter=str(adapter) if adapter else None, ui=ui, runs_dir=runs, llm_base_url=llm_base_url,
            vllm_tensor_parallel=tensor_parallel_size, vllm_pipeline_parallel=pipeline_parallel_size,
            vllm_data_parallel=data_parallel_size,
        )
    )
    keys = run_guarded(lambda: KeyRing.from_settings(settings))  # a bad keys file stops here
    if not keys.enabled:
        out.print(
            "no API key configured: every client may read and change every collection "
            "(set RAG_API_KEYS or RAG_KEYS_FILE before putting this on a network)",
            style="yellow",
        )
    if settings.llm_adapter and not (Path(settings.llm_adapter) / "adapter_config.json").is_file():
        raise fail(f"{settings.llm_adapter} is not a LoRA adapter directory (no adapter_config.json)")
    generator = None  # the embedded engine loads on first use, so that /health answers at once
    if settings.engine not in ("transformers", "onnx"):
        if settings.engine == "vllm" and not settings.llm_base_url:
            out.print(f"starting vLLM for {settings.llm_model} ...")
        generator = run_guarded(lambda: open_generator(settings, vllm_log=log))
        server = getattr(generator, "server", None)
        if server is not None:
            out.print(f"vLLM ready at {server.base_url}")
    # uvicorn re-raises SIGTERM after its graceful shutdown; as an exception here it lets the
    # `finally` below stop vLLM instead of the default handler killing this process on the spot
    signal.signal(signal.SIGTERM, _exit_on_sigterm)
    # `rag ask` and `rag chat` of this index answer through this server while it runs
    client_host = {"0.0.0.0": "127.0.0.1", "::": "[::1]", "": "127.0.0.1"}.get(settings.host, settings.host)
    client_host = f"[{client_host}]" if ":" in client_host and "[" not in client_host else client_host
    announce(settings.index, f"http://{client_host}:{settings.port}")
    try:
        uvicorn.run(create_app(settings, generator), host=settings.host, port=settings.port, log_level="info")
    finally:
        withdraw(settings.index)
        if generator is not None:
            close_generator(generator)


def _exit_on_sigterm(signum, frame) -> None:
    raise SystemExit(128 + signum)


def register(app: typer.Typer) -> None:
    app.command()(serve)
