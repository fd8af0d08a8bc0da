"""Evaluation: retrieval and answer metrics on BEIR datasets, SQuAD files and PDF question sets,
and what the fine-tuning packages share with it: the dataset readers (eval.datasets), the cache
of evaluation indexes (eval.cached_index) and the tuned model's card (eval.model_card)."""
