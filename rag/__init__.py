"""ragstack: PDFs in, cited answers out. `rag` is the pipeline: documents -> chunks -> retrieval."""
