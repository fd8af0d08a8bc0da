"""`rag finetune-llm` end to end: questions -> split (by article / document) -> examples in the
`rag ask` prompt format -> base scored -> QLoRA -> tuned scored -> adapter with card and report."""

from __future__ import annotations

import hashlib
import json
import random
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path

from eval.compare import Comparison, compare_runs
from eval.datasets import load_and_index
from eval.model_card import save_finetune
from eval.report import write_report, write_results
from indexes import IndexStore
from llm_finetune.evaluate import replies, score
from llm_finetune.examples import Example, build_examples
from llm_finetune.model import LoraSettings, load_trainable
from llm_finetune.synthetic import synthetic_questions
from llm_finetune.train import TrainConfig, TrainResult, train_adapter
from rag.answer import ANSWER_K
from rag.generation import DEFAULT_GENERATOR, OpenAIGenerator, TransformersGenerator
from rag.retrieval import Retriever
from rag.settings import Settings


@dataclass
class FinetuneJob:
    """What `rag finetune-llm` was asked to do.

    Args:
        data: SQuAD-format JSON (its contexts become the corpus) or a PDF-QA JSONL with `pdfs`;
            None: no labels, `synthetic` questions are written from the chunks of the index.
        question_style: "cloze" (no LLM) or "llm" (the base model, or `teacher_url`'s).
        test_fraction: share of the articles (SQuAD) or documents (PDF-QA) whose questions are
            held out for the before/after evaluation; whole groups, so no test passage is trained on.
        eval_limit: score at most this many held-out questions (and their refusals).
        max_tokens: answer bound in the evaluation, the same for both models.
    """

    out: Path
    data: Path | None = None
    pdfs: Path | None = None
    synthetic: int = 1000
    question_style: str = "cloze"
    teacher_url: str | None = None
    base: str = DEFAULT_GENERATOR
    test_fraction: float = 0.2
    refusal_fraction: float = 0.2
    answer_k: int = ANSWER_K
    eval_limit: int | None = None
    max_tokens: int = 64
    quantize: bool = True
    resume: bool = False
    seed: int = 0
    lora: LoraSettings = field(default_factory=LoraSettings)
    config: TrainConfig = field(default_factory=TrainConfig)


@dataclass
class FinetuneResult:
    """What a `rag finetune-llm` job made and measured.

    Args:
        out: the adapter's directory; `method` "qlora" or "lora" (no bitsandbytes, or not wanted).
        data: what the questions came from.
        before, after: figures (group -> metric -> value) of the base and the tuned model.
        comparison: the same side by side, as `rag eval compare` writes it.
    """

    base_model: str
    out: Path
    method: str
    data: str
    train_questions: int
    train_examples: int
    refusal_examples: int
    test_questions: int
    test_prompts: int
    lora: LoraSettings
    config: TrainConfig
    train: TrainResult
    before: dict[str, dict[str, float]]
    after: dict[str, dict[str, float]]
    timings: dict[str, float]
    comparison: Comparison

    def card_facts(self) -> list[str]:
        """The adapter card's lines on the base model, the data and the training."""
        lora = self.lora
        return [
            f"LoRA adapter for `{self.base_model}`, tuned with `rag finetune-llm` ({self.method}) on "
            f"{self.data}: {self.train_examples} examples from {self.train_questions} questions "
            f"({self.refusal_examples} with unrelated sources and the refusal as target), in the prompt "
            "format of `rag ask` (numbered sources, answers cite [n]).",
            "",
            f"LoRA rank {lora.rank}, alpha {lora.alpha}, dropout {lora.dropout} on "
            f"{', '.join(lora.target_modules)}; {self.train.steps} steps, learning rate "
            f"{self.config.learning_rate}, {self.train.seconds:.0f} s of training.",
            "",
            f"Held out: {self.test_questions} questions of other articles/documents "
            f"({self.test_prompts} prompts with the refusal prompts). Base -> tuned:",
        ]


def _group_of(question: dict) -> str:
    """The article (SQuAD: "Title-3" -> "Title") or document a question's evidence is in."""
    doc = question["evidence"][0]["doc"] if question.get("evidence") else question["id"]
    return doc.rsplit("-", 1)[0] if doc.rsplit("-", 1)[-1].isdigit() else doc


def split_by_group(
    questions: list[dict], test_fraction: float, seed: int = 0
) -> tuple[list[dict], list[dict]]:
    def bucket(group: str) -> float:
        digest = hashlib.blake2b(f"{seed}\x00{group}".encode(), digest_size=8).digest()
        return int.from_bytes(digest, "big") / 2**64

    test = [q for q in questions if bucket(_group_of(q)) < test_fraction]
    train = [q for q in questions if bucket(_group_of(q)) >= test_fraction]
    if not test or not train:
        raise ValueError(f"too few articles/documents to hold out {test_fraction:.0%} and still train")
    return train, test


def prepare(job: FinetuneJob, settings: Settings) -> tuple[list[dict], Retriever]:
    """The questions (with references) and a retriever over their corpus."""
    if job.data is None:
        if not IndexStore(settings.index).exists():
            raise ValueError(f"no index at {settings.index}: pass --index (built by rag ingest) or --data")
        with IndexStore(settings.index).open() as snapshot:
            chunks = snapshot.records.all_chunks()
        teacher = _teacher(job) if job.question_style == "llm" else None
        questions = synthetic_questions(chunks, job.synthetic, job.question_style, teacher, job.seed)
        if not questions:
            raise ValueError(f"no usable synthetic questions in the {len(chunks)} chunks of {settings.index}")
    else:
        questions, _ = load_and_index(job.data, job.pdfs, settings)
    return questions, Retriever(settings.index)


def _teacher(job: FinetuneJob):
    if job.teacher_url:
        return OpenAIGenerator(job.teacher_url, job.base)
    return TransformersGenerator(job.base)


def _run(name: str, generator, examples: list[Example], job: FinetuneJob, directory: Path) -> dict:
    started = time.perf_counter()
    figures, rows = score(examples, replies(generator, examples, job.max_tokens))
    run = {
        "kind": "llm-finetune-eval",
        "model": name,
        "figures": figures,
        "questions": len(examples),
        "rows": rows,
        "settings": {"generator": name, "max_tokens": job.max_tokens, "answer_k": job.answer_k},
        "timings": {"answer_s": time.perf_counter() - started},
    }
    directory.mkdir(parents=True, exist_ok=True)
    write_results(directory, run)
    write_report(directory, run, f"{name} ({len(examples)} prompts)")
    return run


def finetune_generator(job: FinetuneJob, settings: Settings) -> FinetuneResult:
    """Run the whole job: the adapter, its card and its report are written to `job.out`."""
    started = time.perf_counter()
    out = Path(job.out)
    out.mkdir(parents=True, exist_ok=True)
    questions, retriever = prepare(job, settings)
    train_q, test_q = split_by_group(questions, job.test_fraction, job.seed)
    train_examples = build_examples(
        train_q, retriever, job.answer_k, settings.mode, job.refusal_fraction, job.seed
    )
    if job.eval_limit and job.eval_limit < len(test_q):
        # a sample across all held-out articles: the first N would be one or two articles, and
        # their refusal prompts would borrow sources from the same article
        test_q = random.Random(job.seed).sample(test_q, job.eval_limit)
    test_examples = build_examples(
        test_q,
        retriever,
        job.answer_k,
        settings.mode,
        job.refusal_fraction,
        job.seed + 1,
        keep_unanswered=True,
    )
    report = out / "eval"
    before = _run("base", TransformersGenerator(job.base), test_examples, job, report / "base")

    model, tokenizer, method = load_trainable(job.base, job.lora, job.quantize)
    trained = train_adapter(model, tokenizer, train_examples, out, job.config, resume=job.resume)
    model.save_pretrained(str(out))
    tokenizer.save_pretrained(str(out))
    del model

    after = _run(
        "tuned", TransformersGenerator(job.base, adapter=str(out)), test_examples, job, report / "tuned"
    )
    comparison = compare_runs(report / "base", report / "tuned", out=report / "compare.md")
    result = FinetuneResult(
        base_model=job.base,
        out=out.resolve(),
        method=method,
        data=str(job.data) if job.data else f"{len(questions)} synthetic ({job.question_style}) questions",
        train_questions=len(train_q),
        train_examples=len(train_examples),
        refusal_examples=sum(not e.answerable for e in train_examples),
        test_questions=len(test_q),
        test_prompts=len(test_examples),
        lora=job.lora,
        config=job.config,
        train=trained,
        before=before["figures"],
        after=after["figures"],
        timings={"train_s": trained.seconds, "total_s": time.perf_counter() - started},
        comparison=comparison,
    )
    # what `rag export-merged` reads to find the base again
    (out / "ragstack-adapter.json").write_text(
        json.dumps({"base": job.base, "method": method}, indent=2) + "\n"
    )
    usage = (
        "Serve it: `rag serve --adapter THIS_DIR` (transformers or `--engine vllm`); merge it: "
        "`rag export-merged THIS_DIR --out MERGED_DIR`."
    )
    save_finetune(out, result, usage)
    shutil.rmtree(out / "checkpoints", ignore_errors=True)
    return result


def export_merged(adapter: Path, out: Path, base: str | None = None) -> Path:
    """Full weights with the adapter merged in, loadable by transformers (and vLLM) alone."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from rag.generation import hf_model_dir, load_adapter
    from rag.loading import model_loading

    info = Path(adapter) / "ragstack-adapter.json"
    base = base or (json.loads(info.read_text())["base"] if info.is_file() else DEFAULT_GENERATOR)
    path = hf_model_dir(base)
    with model_loading:
        model = AutoModelForCausalLM.from_pretrained(path, dtype=torch.float32)
        merged = load_adapter(model, str(adapter))
    out = Path(out)
    merged.save_pretrained(str(out))
    AutoTokenizer.from_pretrained(path).save_pretrained(str(out))
    return out
