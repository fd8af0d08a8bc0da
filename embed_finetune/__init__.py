"""Contrastive fine-tuning of the embedding model on a user's own documents (`rag finetune-embed`)."""
