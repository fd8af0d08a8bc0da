"""The LangChain and LlamaIndex adapters, each driven through its framework's own API."""

import pytest
from conftest import covers

from rag.ingest import ingest
from rag.retrieval import Retriever


@pytest.fixture
def retriever(reports, settings, embedder) -> Retriever:
    ingest([reports], settings, progress=False, embedder=embedder)
    return Retriever(settings.index, embedder)


def test_langchain_chat_model_in_a_chain(generator) -> None:
    from langchain_core.messages import AIMessageChunk
    from langchain_core.output_parsers import StrOutputParser
    from langchain_core.prompts import ChatPromptTemplate

    from rag.integrations.langchain import RagstackChatModel

    chat = RagstackChatModel(generator=generator, max_tokens=12)
    prompt = ChatPromptTemplate.from_messages(
        [("system", "You are terse."), ("human", "Name a colour of {thing}.")]
    )
    text = (prompt | chat | StrOutputParser()).invoke({"thing": "the sky"})
    assert isinstance(text, str) and text.strip() and generator.count_tokens(text) <= 14
    chunks = list(chat.stream("Count to five."))
    assert len(chunks) > 1 and all(isinstance(c, AIMessageChunk) for c in chunks)
    assert chat.invoke("Count to five.", stop=["3"]).content.count("3") == 0


def test_langchain_embeddings_in_a_vector_store(embedder) -> None:
    from langchain_core.vectorstores import InMemoryVectorStore

    from rag.integrations.langchain import RagstackEmbeddings

    store = InMemoryVectorStore(embedding=RagstackEmbeddings(embedder))
    store.add_texts(["Zebras migrate across the Serengeti.", "Revenue rose to 4.2 billion dollars."])
    assert store.similarity_search("animal migration in Africa", k=1)[0].page_content.startswith("Zebras")
    assert len(RagstackEmbeddings(embedder).embed_query("x")) == 384


def test_langchain_retriever(retriever) -> None:
    from langchain_core.runnables import RunnableLambda

    from rag.integrations.langchain import RagstackRetriever

    lc = RagstackRetriever(retriever=retriever, k=2)
    documents = lc.invoke("capital expenditure in 2021")
    assert len(documents) == 2 and covers(documents[0].metadata, "acme_2021.pdf", 3)
    assert "310 million" in documents[0].page_content
    chain = lc | RunnableLambda(lambda docs: [d.metadata["doc"] for d in docs])
    assert (
        chain.batch(["revenue in 2022", "revenue in 2021"])
        and chain.invoke("revenue in 2022")[0] == "acme_2022.pdf"
    )
    only = RagstackRetriever(retriever=retriever, k=5, docs=["acme_2022.pdf"]).invoke("capital expenditure")
    assert {d.metadata["doc"] for d in only} == {"acme_2022.pdf"}


def test_llamaindex_retriever(retriever) -> None:
    import asyncio

    from llama_index.core import QueryBundle

    from rag.integrations.llamaindex import RagstackLlamaRetriever

    li = RagstackLlamaRetriever(retriever, k=2)
    nodes = li.retrieve("Acme's revenue in 2022")
    assert len(nodes) == 2 and nodes[0].node.metadata["doc"] == "acme_2022.pdf"
    assert "5.1 billion" in nodes[0].node.get_content() and nodes[0].score > 0
    again = asyncio.run(li.aretrieve(QueryBundle("Acme's revenue in 2022")))
    assert [n.node.node_id for n in again] == [n.node.node_id for n in nodes]
