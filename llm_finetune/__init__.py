"""QLoRA tuning of the generator for cited answers (`rag finetune-llm`): work in progress, see
the open issue; today it holds the training examples and the answer-only loss mask."""
