"""A LlamaIndex retriever over a ragstack index.

Example:
    >>> retriever = RagstackLlamaRetriever(Retriever(index), k=3)
    >>> retriever.retrieve("capital expenditure 2018")[0].node.metadata["doc"]
"""

from __future__ import annotations

from llama_index.core.retrievers import BaseRetriever
from llama_index.core.schema import NodeWithScore, QueryBundle, TextNode


class RagstackLlamaRetriever(BaseRetriever):
    def __init__(self, retriever, k: int = 5, mode: str = "hybrid", docs: list[str] | None = None):
        super().__init__()
        self.retriever, self.k, self.mode, self.docs = retriever, k, mode, docs

    def _retrieve(self, query_bundle: QueryBundle) -> list[NodeWithScore]:
        results = self.retriever.search(query_bundle.query_str, k=self.k, mode=self.mode, docs=self.docs)
        return [
            NodeWithScore(
                node=TextNode(
                    id_=r.chunk_id,
                    text=r.text,
                    metadata={"doc": r.doc, "page_start": r.page_start, "page_end": r.page_end},
                ),
                score=r.score,
            )
            for r in results
        ]
