"""Tokenising an example so that the loss counts the answer tokens only: the prompt (system text,
sources, question) is context the model reads, not text it should learn to write."""

from __future__ import annotations

from llm_finetune.examples import Example

IGNORE = -100  # the label PyTorch's cross-entropy skips


def tokenize_example(tokenizer, example: Example, max_length: int = 1024) -> dict[str, list[int]] | None:
    """input_ids, attention_mask and labels (IGNORE over the prompt); None when it does not fit."""
    prompt = tokenizer.apply_chat_template(example.messages, add_generation_prompt=True, tokenize=False)
    prompt_ids = tokenizer(prompt, add_special_tokens=False)["input_ids"]
    end = tokenizer.eos_token or ""
    answer_ids = tokenizer(example.target + end, add_special_tokens=False)["input_ids"]
    if len(prompt_ids) + len(answer_ids) > max_length:
        return None  # cutting the sources would teach citations of text the model never saw
    ids = prompt_ids + answer_ids
    return {
        "input_ids": ids,
        "attention_mask": [1] * len(ids),
        "labels": [IGNORE] * len(prompt_ids) + answer_ids,
    }
