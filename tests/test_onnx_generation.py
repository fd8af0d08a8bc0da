"""The onnx engine (rag.onnx_generation): the real SmolLM2 exported by onnxruntime-genai gives the
transformers engine's greedy answers, streams them, keeps grounded decoding, and runs a LoRA
adapter merged into a cached copy of the model."""

from __future__ import annotations

import pytest

from rag.answer import build_messages, grounding_text
from rag.engines import load_generator
from rag.generation import clean, generate
from rag.onnx_generation import DRAFT_TOKENS, OnnxGenerator
from rag.retrieval import SearchResult

SOURCE = SearchResult(
    doc="season.pdf", page_start=1, page_end=1, chunk_id="s1", score=1.0,
    text="The Panthers defense gave up just 308 points, ranking sixth in the league, while leading "
    "the NFL in interceptions with 24. Luke Kuechly led the team in tackles (118).",
)
QUESTIONS = [
    "How many points did the Panthers defense surrender?",
    "How many tackles did Luke Kuechly register?",
    "Who led the team in tackles?",
]


@pytest.fixture(scope="module")
def onnx_generator(generator) -> OnnxGenerator:
    assert isinstance(generator, OnnxGenerator)  # the default engine's, shared with the other tests
    return generator


def test_greedy_answers_are_the_transformers_engines(onnx_generator, transformers_generator) -> None:
    chats = [build_messages(q, [SOURCE]) for q in QUESTIONS]
    chats.append([{"role": "user", "content": "Name three colours."}])
    for messages in chats:
        assert generate(onnx_generator, messages, 40) == generate(transformers_generator, messages, 40)


def test_the_numpy_repetition_penalty_is_transformers_exactly() -> None:
    import numpy as np
    import torch
    from transformers import RepetitionPenaltyLogitsProcessor

    from rag.generation import REPETITION_PENALTY
    from rag.onnx_generation import penalise_repeats

    scores = np.random.default_rng(0).normal(0, 5, 1000).astype(np.float32)
    prompt, reply = [1, 2, 3], [7, 7, 500, 3, 999]  # the prompt's tokens are not penalised
    theirs = RepetitionPenaltyLogitsProcessor(REPETITION_PENALTY, prompt_ignore_length=len(prompt))(
        torch.tensor([prompt + reply]), torch.from_numpy(scores.copy()).reshape(1, -1)
    ).numpy()[0]
    ours = scores.copy()
    penalise_repeats(ours, reply)
    assert np.array_equal(ours, theirs)
    assert not np.array_equal(ours, scores) and ours[1] == scores[1]


def test_the_stream_is_the_answer_in_pieces(onnx_generator) -> None:
    messages = build_messages(QUESTIONS[0], [SOURCE])
    pieces = list(onnx_generator.stream(messages, 24))
    assert len(pieces) > 3
    assert "".join(pieces).strip() == generate(onnx_generator, messages, 24)
    assert onnx_generator.generate_batch([messages], 24) == [generate(onnx_generator, messages, 24)]


def test_grounded_decoding_is_the_transformers_engines(onnx_generator, transformers_generator) -> None:
    chats = [build_messages(q, [SOURCE]) for q in QUESTIONS]
    grounding = [grounding_text(q, [SOURCE]) for q in QUESTIONS]
    onnx_generator.grounded = transformers_generator.grounded = True
    try:
        ours = onnx_generator.generate_batch(chats, 40, grounding=grounding)
        theirs = [clean("".join(transformers_generator.stream(m, 40, grounding=g)))
                  for m, g in zip(chats, grounding, strict=True)]
    finally:
        onnx_generator.grounded = transformers_generator.grounded = False
    assert ours == theirs
    assert ours != onnx_generator.generate_batch(chats, 40)  # grounding changed something


def test_a_prompt_is_computed_from_where_it_differs_from_the_last(onnx_generator) -> None:
    """Two questions over one source share the chat template, system prompt and source: the
    second prompt reuses what the kept generator holds, and answers as a fresh generator does."""
    first, second = (build_messages(q, [SOURCE]) for q in QUESTIONS[:2])
    generate(onnx_generator, first, 16)
    answer = generate(onnx_generator, second, 16)
    shared = onnx_generator.reused_tokens
    assert shared > 100  # the system prompt alone is ~100 tokens, the source ~50 more
    onnx_generator._kept = None  # forget it: a fresh generator reads the whole prompt
    assert generate(onnx_generator, second, 16) == answer
    assert onnx_generator.reused_tokens == 0


def test_bad_requests_are_refused_in_words(onnx_generator) -> None:
    with pytest.raises(ValueError, match="exceeds the 8192-token context"):
        list(onnx_generator.stream([{"role": "user", "content": "word " * 9000}], 16))
    with pytest.raises(ValueError, match="unknown precision"):
        OnnxGenerator(precision="int2")


def test_an_adapter_is_merged_and_exported(tmp_path, transformers_generator) -> None:
    """A LoRA adapter on the onnx engine: merged into a cached copy of the model, which is
    exported; its greedy answers are the transformers engine's with the same adapter, and not the
    base model's. (The adapter is random, not trained: the test is about plumbing.)"""
    import torch
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM

    from rag.generation import TransformersGenerator, hf_model_dir, merged_model_dir

    with pytest.raises(ValueError, match="not a LoRA adapter directory"):
        load_generator("onnx", adapter=str(tmp_path))
    torch.manual_seed(0)
    base = AutoModelForCausalLM.from_pretrained(hf_model_dir(), dtype=torch.float32)
    config = LoraConfig(r=4, lora_alpha=32, target_modules=["q_proj", "v_proj"], init_lora_weights=False)
    adapter = tmp_path / "random-adapter"
    get_peft_model(base, config).save_pretrained(adapter)

    onnx_tuned = load_generator("onnx", adapter=str(adapter))
    assert isinstance(onnx_tuned, OnnxGenerator) and onnx_tuned.adapter == str(adapter)
    same = merged_model_dir("SmolLM2-135M-Instruct", str(adapter)), merged_model_dir("smollm2", str(adapter))
    assert same[0] == same[1]
    tuned = TransformersGenerator(adapter=str(adapter))
    messages = build_messages(QUESTIONS[0], [SOURCE])
    answer = generate(onnx_tuned, messages, 24)
    assert answer == generate(tuned, messages, 24)
    assert answer != generate(transformers_generator, messages, 24)


def test_a_stream_left_unfinished_does_not_block_the_next(onnx_generator) -> None:
    """A client that goes away mid-stream leaves its stream suspended, never closed: the next
    request must still be answered (the lock was once held across the stream's yield)."""
    import threading

    messages = build_messages(QUESTIONS[0], [SOURCE])
    left = onnx_generator.stream(messages, 24)
    assert next(left)  # one piece read, then abandoned (a reference kept: not collected)
    replies: list[str] = []
    worker = threading.Thread(
        target=lambda: replies.append(generate(onnx_generator, messages, 8)), daemon=True
    )
    worker.start()
    worker.join(60)
    assert replies and replies[0], "the next request waited on the abandoned stream"
    del left


def test_a_draft_is_what_followed_the_last_tokens_earlier() -> None:
    from rag.onnx_generation import lookup_draft

    sequence = [5, 1, 2, 3, 4, 6, 7, 9, 2, 3]
    assert lookup_draft(sequence, 3) == [4, 6, 7]  # "2 3" was followed by "4 6 7"
    assert lookup_draft([5, 1, 2, 3, 4, 1, 2, 3], 2) == [4, 1]  # the longest match, the latest
    assert lookup_draft([1, 2, 3, 4], 3) == []  # nothing repeats
    assert lookup_draft(sequence, 0) == []


def test_guessed_tokens_are_kept_only_where_the_model_picks_them(onnx_generator) -> None:
    """A reply that quotes its source checks several guessed tokens a step; the answer is the
    one-token-a-step answer (the transformers engine's, above), and a stream abandoned between
    guessed tokens leaves the kept generator knowing what it holds."""
    messages = build_messages("Quote what the source says about Luke Kuechly.", [SOURCE])
    drafted = generate(onnx_generator, messages, 40)
    assert onnx_generator.accepted_tokens > 0, "no guessed token was kept on a quoting reply"
    onnx_generator.draft_tokens = 0
    try:
        assert generate(onnx_generator, messages, 40) == drafted
        assert onnx_generator.drafted_tokens == 0
    finally:
        onnx_generator.draft_tokens = DRAFT_TOKENS
    left = onnx_generator.stream(messages, 40)
    for _ in range(6):
        next(left)
    left.close()
    assert generate(onnx_generator, messages, 40) == drafted
    assert onnx_generator.reused_tokens > 100


def test_the_export_computes_only_the_last_positions_logits(onnx_generator) -> None:
    import onnx

    from rag.generation import hf_model_dir
    from rag.onnx_generation import exported_model
    from rag.onnx_logits import MARKER, keep_last_logits

    export = exported_model(hf_model_dir(onnx_generator.name))
    assert (export / MARKER).is_file()
    graph = onnx.load(str(export / "model.onnx"), load_external_data=False).graph
    producers = {out: node for node in graph.node for out in node.output}
    pad = producers["logits"]
    head = producers[pad.input[0]]
    assert pad.op_type == "Pad" and head.op_type == "MatMul"
    assert producers[head.input[0]].op_type == "Slice"  # the output head reads the last positions
    assert keep_last_logits(export)  # made once: a second call leaves it
