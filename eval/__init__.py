"""Evaluation: retrieval metrics on BEIR datasets and on PDF question sets."""
