"""QLoRA tuning of the generator for cited answers (`rag finetune-llm`, `rag export-merged`):
training examples in the `rag ask` prompt format, the answer-only loss mask, training with the
Hugging Face Trainer, and the base and tuned models scored on held-out questions."""
