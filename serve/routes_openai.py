"""The OpenAI-compatible routes: chat completions (streamed as server-sent events or not), models
and embeddings, so that the official openai client works against ragstack. A chat request's
`model` names the collection it asks (serve.service.Service.collection_for_model).

Each handler is a plain `def`: loading the models, the follow-up rewrite, generation, encoding
and tokenising all block, and FastAPI runs plain handlers in its thread pool, off the event loop
(a stream's iterator too), so that /health and other requests keep being answered meanwhile.
"""

from __future__ import annotations

from collections.abc import Iterator

from fastapi import APIRouter, Request, Response
from fastapi.responses import StreamingResponse
from openai.types.chat.chat_completion_chunk import ChoiceDelta

from rag.conversation import ChatTurn
from serve import responses
from serve.responses import SSE_DONE, Completion, chat_chunk, openai_json, sse
from serve.schemas import ChatRequest, EmbeddingRequest
from serve.service import Service
from serve.state import AppState

router = APIRouter()


def _service(request: Request) -> Service:
    return request.app.state.rag


@router.get("/models")
def models(request: Request) -> Response:
    """The generator, the embedding model, and the collections this key may chat with (a chat
    request names its collection as `model`)."""
    service = _service(request)
    names = [service.models.generator_name(), service.settings.model]
    names += [n for n in service.names(request.state.grant) if n not in names]
    return openai_json(responses.model_list(names))


@router.post("/chat/completions")
def chat_completions(body: ChatRequest, request: Request) -> Response:
    service, grant = _service(request), request.state.grant
    state = service.open(service.collection_for_model(body.model), grant)
    session_id = state.session(body.session_id, grant)
    # a follow-up's rewrite (a generation) runs here, before the first token
    turn = state.chat().turn(body.question(), session_id, body.history(), **body.answer_options())
    completion = Completion(body.model or service.models.generator_name())
    if body.stream:
        return StreamingResponse(_events(turn, completion, session_id, state), media_type="text/event-stream")
    generated = "".join(turn)
    state.metrics.tokens(state.count_tokens(generated))
    answer = turn.answer
    return openai_json(
        responses.chat_completion(completion, answer, state.count_tokens(answer.text), session_id)
    )


def _events(turn: ChatTurn, completion: Completion, session_id: str | None, state: AppState) -> Iterator[str]:
    """The stream: the role, the generated pieces, the "Sources:" list, then a last chunk with
    finish_reason and ragstack's extras (citations are known only once generation ends)."""
    yield sse(chat_chunk(completion, ChoiceDelta(role="assistant", content="")))
    generated = []
    for piece in turn:
        generated.append(piece)
        yield sse(chat_chunk(completion, ChoiceDelta(content=piece)))
    state.metrics.tokens(state.count_tokens("".join(generated)))
    answer = turn.answer
    sources = responses.sources_list(answer)
    if sources:
        yield sse(chat_chunk(completion, ChoiceDelta(content=sources)))
    # `text`: the answer as checked (rag.claims may have put source sentences in place of the
    # streamed ones), which a client shows once the stream ends; the non-streamed message has it
    extras = {**responses.answer_extras(answer, session_id), "text": answer.text}
    yield sse(chat_chunk(completion, ChoiceDelta(), "stop", **extras))
    yield SSE_DONE


@router.post("/embeddings")
def embeddings(body: EmbeddingRequest, request: Request) -> Response:
    embedder = _service(request).models.embedding_model()
    texts = body.texts()
    vectors = embedder.encode(texts)
    tokens = sum(len(ids) for ids in embedder.tokenizer(texts)["input_ids"])
    response = responses.embeddings(vectors, embedder.name, body.encoding_format, tokens)
    return openai_json(response, warnings=False)
