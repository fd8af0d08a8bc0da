"""ragstack inside other frameworks: LangChain (chat model, embeddings, retriever) and LlamaIndex
(retriever). Each module imports its framework, an optional dependency, only when imported."""
