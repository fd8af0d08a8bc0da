"""HTTP serving of ragstack: an OpenAI-compatible API over an index (see serve.app)."""
