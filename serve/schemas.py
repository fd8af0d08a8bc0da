"""Request bodies: the OpenAI shapes the official client sends, plus ragstack's own endpoints.

Every field that grows is bounded here (a 422 naming the bound); the body as a whole is bounded
before it is parsed (serve.limits), and the prompt is cut to the generator's context (rag.answer).
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from rag.conversation import SessionStore
from rag.retrieval import Mode

MAX_MESSAGE_CHARS = 32_000  # one message: far more than a question, far less than a book
MAX_MESSAGES = 100
MAX_DOCS = 100  # document names a request may restrict itself to
MAX_NAME_CHARS = 512
MAX_QUERY_CHARS = 4_000
MAX_EMBED_INPUTS = 2048
MAX_EMBED_CHARS = 32_000  # one input; the model reads its first 256 tokens anyway

DocNames = list[Annotated[str, Field(max_length=MAX_NAME_CHARS)]]


class ChatMessage(BaseModel):
    model_config = ConfigDict(extra="ignore")

    role: Literal["system", "user", "assistant", "tool", "developer"]
    content: str | list[dict] | None = None

    def text(self) -> str:
        """Content as text; OpenAI's list-of-parts form keeps its text parts."""
        if isinstance(self.content, list):
            return " ".join(str(p.get("text", "")) for p in self.content if p.get("type") == "text")
        return self.content or ""

    @field_validator("content")
    @classmethod
    def bounded(cls, content: str | list[dict] | None) -> str | list[dict] | None:
        text = content if isinstance(content, str) else str(content or "")
        if len(text) > MAX_MESSAGE_CHARS:
            raise ValueError(f"a message may hold at most {MAX_MESSAGE_CHARS} characters")
        return content


class ChatRequest(BaseModel):
    model_config = ConfigDict(extra="ignore")  # OpenAI fields we do not use (top_p, n, ...) are accepted

    model: str | None = Field(None, max_length=MAX_NAME_CHARS)
    messages: list[ChatMessage] = Field(min_length=1, max_length=MAX_MESSAGES)
    temperature: float = Field(0.0, ge=0.0, le=2.0)
    max_tokens: int | None = Field(None, ge=1, le=4096)
    max_completion_tokens: int | None = Field(None, ge=1, le=4096)
    stream: bool = False
    # ragstack extras (the openai client sends them with extra_body=...)
    session_id: str | None = None  # one the server made (a response's session_id, POST /v1/sessions)
    docs: DocNames | None = Field(None, max_length=MAX_DOCS)

    @field_validator("messages")
    @classmethod
    def ends_with_user(cls, messages: list[ChatMessage]) -> list[ChatMessage]:
        if messages[-1].role != "user" or not messages[-1].text().strip():
            raise ValueError("the last message must be a non-empty user message")
        return messages

    @field_validator("session_id")
    @classmethod
    def valid_session_id(cls, session_id: str | None) -> str | None:
        if session_id is not None and not SessionStore.valid_id(session_id):
            raise ValueError("1-128 letters, digits or _.:-")
        return session_id

    def question(self) -> str:
        return self.messages[-1].text()

    def history(self) -> list[dict] | None:
        """The earlier user and assistant turns; None when there are none, so that the session's
        history (if any) is used instead."""
        earlier = [
            {"role": m.role, "content": m.text()}
            for m in self.messages[:-1]
            if m.role in ("user", "assistant")
        ]
        return earlier or None

    def answer_options(self) -> dict:
        """Keyword arguments of rag.answer.Answerer.stream."""
        return {
            "docs": self.docs,
            "temperature": self.temperature,
            "max_tokens": self.max_completion_tokens or self.max_tokens,
        }


class EmbeddingRequest(BaseModel):
    model_config = ConfigDict(extra="ignore")

    input: (
        Annotated[str, Field(max_length=MAX_EMBED_CHARS)]
        | list[Annotated[str, Field(max_length=MAX_EMBED_CHARS)]]
    ) = Field(min_length=1)
    model: str | None = Field(None, max_length=MAX_NAME_CHARS)
    encoding_format: Literal["float", "base64"] = "float"  # the openai client asks for base64

    @field_validator("input")
    @classmethod
    def not_too_many(cls, value: str | list[str]) -> str | list[str]:
        if isinstance(value, list) and len(value) > MAX_EMBED_INPUTS:
            raise ValueError(f"at most {MAX_EMBED_INPUTS} inputs per request")
        return value

    def texts(self) -> list[str]:
        return [self.input] if isinstance(self.input, str) else self.input


class SearchRequest(BaseModel):
    query: str = Field(min_length=1, max_length=MAX_QUERY_CHARS)
    k: int = Field(10, ge=1, le=1000)
    mode: Mode = "hybrid"
    docs: DocNames | None = Field(None, max_length=MAX_DOCS)


class HighlightRequest(BaseModel):
    text: str = Field(min_length=1, max_length=MAX_MESSAGE_CHARS)  # a chunk's text, as search returns it
