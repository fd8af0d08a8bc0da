"""LangChain adapters over ragstack: a chat model over a generator, embeddings over the embedding
model, and a retriever over an index. ragas talks to LLMs and embeddings through these.

Example:
    >>> from rag.integrations.langchain import RagstackChatModel, RagstackRetriever
    >>> chat = RagstackChatModel(generator=TransformersGenerator())
    >>> chat.invoke("Say hello").content
    >>> RagstackRetriever(retriever=Retriever(index), k=3).invoke("capital expenditure 2018")
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from langchain_core.callbacks import CallbackManagerForLLMRun, CallbackManagerForRetrieverRun
from langchain_core.documents import Document
from langchain_core.embeddings import Embeddings
from langchain_core.language_models.chat_models import BaseChatModel
from langchain_core.messages import AIMessage, AIMessageChunk, BaseMessage
from langchain_core.outputs import ChatGeneration, ChatGenerationChunk, ChatResult
from langchain_core.retrievers import BaseRetriever
from pydantic import ConfigDict

from rag.generation import clean

_ROLES = {"human": "user", "ai": "assistant", "system": "system", "chat": "user", "tool": "user"}


def to_messages(messages: list[BaseMessage]) -> list[dict[str, str]]:
    return [
        {"role": _ROLES.get(m.type, "user"), "content": m.text if hasattr(m, "text") else str(m.content)}
        for m in messages
    ]


def _cut_at_stop(text: str, stop: list[str] | None) -> str:
    for marker in stop or []:
        if marker in text:
            text = text[: text.index(marker)]
    return text


class RagstackChatModel(BaseChatModel):
    """A LangChain chat model over any rag.generation generator (embedded, OpenAI-compatible, vLLM)."""

    model_config = ConfigDict(arbitrary_types_allowed=True)
    generator: Any
    max_tokens: int = 256
    temperature: float = 0.0

    @property
    def _llm_type(self) -> str:
        return "ragstack"

    @property
    def _identifying_params(self) -> dict[str, Any]:
        return {"model": self.generator.name, "max_tokens": self.max_tokens, "temperature": self.temperature}

    def _options(self, kwargs: dict) -> tuple[int, float]:
        return kwargs.get("max_tokens", self.max_tokens), kwargs.get("temperature", self.temperature)

    def _generate(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: CallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> ChatResult:
        max_tokens, temperature = self._options(kwargs)
        text = "".join(self.generator.stream(to_messages(messages), max_tokens, temperature))
        return ChatResult(
            generations=[ChatGeneration(message=AIMessage(content=_cut_at_stop(clean(text), stop)))]
        )

    def _stream(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: CallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> Iterator[ChatGenerationChunk]:
        max_tokens, temperature = self._options(kwargs)
        for piece in self.generator.stream(to_messages(messages), max_tokens, temperature):
            chunk = ChatGenerationChunk(message=AIMessageChunk(content=piece))
            if run_manager:
                run_manager.on_llm_new_token(piece, chunk=chunk)
            yield chunk


class RagstackEmbeddings(Embeddings):
    """LangChain embeddings over a rag.embedding.Embedder (normalised vectors)."""

    def __init__(self, embedder):
        self.embedder = embedder

    def embed_documents(self, texts: list[str]) -> list[list[float]]:
        return self.embedder.encode(list(texts), prompt=self.embedder.prompts["document"]).tolist()

    def embed_query(self, text: str) -> list[float]:
        return self.embedder.encode([text], prompt=self.embedder.prompts["query"])[0].tolist()


class RagstackRetriever(BaseRetriever):
    """A LangChain retriever over a ragstack index; metadata carries document, pages, chunk, score."""

    model_config = ConfigDict(arbitrary_types_allowed=True)
    retriever: Any  # rag.retrieval.Retriever
    k: int = 5
    mode: str = "hybrid"
    docs: list[str] | None = None

    def _get_relevant_documents(
        self, query: str, *, run_manager: CallbackManagerForRetrieverRun
    ) -> list[Document]:
        return [
            Document(
                page_content=r.text,
                id=r.chunk_id,
                metadata={
                    "doc": r.doc,
                    "page_start": r.page_start,
                    "page_end": r.page_end,
                    "chunk_id": r.chunk_id,
                    "score": r.score,
                    "similarity": r.similarity,
                },
            )
            for r in self.retriever.search(query, k=self.k, mode=self.mode, docs=self.docs)
        ]
