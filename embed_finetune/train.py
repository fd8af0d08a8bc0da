"""Training: hard negatives mined by sentence-transformers, an in-batch contrastive loss, and
`SentenceTransformerTrainer` (the Hugging Face Trainer) with checkpoints to resume from."""

from __future__ import annotations

import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path

from embed_finetune.pairs import Pair
from rag.embedding import resolve_model, resolve_precision
from rag.loading import has_cuda, model_loading

LOSSES = ("mnrl", "cached-mnrl")


@dataclass
class TrainConfig:
    """How to train; the defaults are the ones measured on SciFact (bench/RESULTS.md).

    Args:
        loss: "mnrl" (MultipleNegativesRankingLoss: every other positive in the batch is a
            negative) or "cached-mnrl" (the same loss with gradient caching: large batches in
            little memory, `mini_batch_size` texts at a time).
        matryoshka_dims: also train these truncated dimensions (MatryoshkaLoss), e.g. [256, 128].
        negatives: hard negatives mined per pair (0: in-batch negatives only).
        range_min, range_max, relative_margin: which mined candidates may be negatives: ranks
            [range_min, range_max) of the base model's search, and only those scoring at least
            `relative_margin` below the positive, so that unlabelled positives are not pushed away.
        precision: "auto" trains in bf16 autocast on CPUs with native bfloat16, else fp32.
    """

    epochs: float = 1.0
    batch_size: int = 32
    learning_rate: float = 5e-5
    warmup_ratio: float = 0.1
    loss: str = "mnrl"
    mini_batch_size: int = 16
    matryoshka_dims: list[int] = field(default_factory=list)
    negatives: int = 1
    range_min: int = 10
    range_max: int = 50
    relative_margin: float = 0.05
    max_seq_length: int = 256
    precision: str = "auto"
    save_steps: int = 50
    max_steps: int = -1
    seed: int = 42

    def check(self) -> None:
        if self.loss not in LOSSES:
            raise ValueError(f"unknown loss {self.loss!r}; choose one of {', '.join(LOSSES)}")
        if self.batch_size < 2:
            raise ValueError(
                "the batch size must be at least 2: the other pairs of a batch are the negatives"
            )
        if self.range_min >= self.range_max:
            raise ValueError(f"range_min ({self.range_min}) must be below range_max ({self.range_max})")


@dataclass
class TrainResult:
    steps: int
    seconds: float
    train_loss: float
    examples: int
    negatives: int
    resumed_from: str | None
    log: list[dict]


def load_model(name: str, max_seq_length: int):
    from sentence_transformers import SentenceTransformer

    with model_loading:
        model = SentenceTransformer(resolve_model(name), device="cpu" if not has_cuda() else None)
    model.max_seq_length = max_seq_length
    return model


def training_dataset(pairs: list[Pair], corpus: dict[str, str], model, config: TrainConfig, cache: Path):
    """(anchor, positive[, negative]) rows; negatives mined from `corpus` with the base model."""
    import torch
    from datasets import Dataset
    from sentence_transformers.util import mine_hard_negatives

    dataset = Dataset.from_dict(
        {
            "anchor": [p.query for p in pairs],
            "positive": [p.positive for p in pairs],
        }
    )
    if config.negatives == 0:
        return dataset
    bf16 = resolve_precision(config.precision) == "bf16"
    with torch.autocast("cuda" if has_cuda() else "cpu", dtype=torch.bfloat16, enabled=bf16):
        return mine_hard_negatives(
            dataset,
            model,
            corpus=list(dict.fromkeys(corpus.values())),
            range_min=config.range_min,
            range_max=config.range_max,
            relative_margin=config.relative_margin,
            num_negatives=config.negatives,
            sampling_strategy="top",
            batch_size=64,
            use_faiss=True,
            cache_folder=str(cache),
            verbose=True,
        )


def make_loss(model, config: TrainConfig):
    from sentence_transformers.sentence_transformer.losses import (
        CachedMultipleNegativesRankingLoss,
        MatryoshkaLoss,
        MultipleNegativesRankingLoss,
    )

    if config.loss == "cached-mnrl":
        loss = CachedMultipleNegativesRankingLoss(model, mini_batch_size=config.mini_batch_size)
    else:
        loss = MultipleNegativesRankingLoss(model)
    if config.matryoshka_dims:
        loss = MatryoshkaLoss(model, loss, matryoshka_dims=sorted(config.matryoshka_dims, reverse=True))
    return loss


def train(
    model,
    pairs: list[Pair],
    corpus: dict[str, str],
    work_dir: Path,
    config: TrainConfig,
    resume: bool = False,
    progress: bool = True,
) -> TrainResult:
    """Fine-tune `model` in place; checkpoints go to `work_dir/checkpoints`.

    With `resume`, the training data saved by the interrupted run and its last checkpoint are
    used, so the run continues where it stopped rather than starting again.
    """
    from datasets import load_from_disk
    from sentence_transformers import SentenceTransformerTrainer
    from sentence_transformers.sentence_transformer.training_args import (
        BatchSamplers,
        SentenceTransformerTrainingArguments,
    )
    from transformers.trainer_utils import get_last_checkpoint

    config.check()
    checkpoints = work_dir / "checkpoints"
    data_dir = work_dir / "train-data"
    last = get_last_checkpoint(str(checkpoints)) if resume and checkpoints.is_dir() else None
    if resume and data_dir.is_dir():
        dataset = load_from_disk(str(data_dir))
    else:
        shutil.rmtree(checkpoints, ignore_errors=True)
        last = None
        dataset = training_dataset(pairs, corpus, model, config, work_dir / "mining-cache")
        dataset.save_to_disk(str(data_dir))
    args = SentenceTransformerTrainingArguments(
        output_dir=str(checkpoints),
        num_train_epochs=config.epochs,
        max_steps=config.max_steps,
        per_device_train_batch_size=config.batch_size,
        learning_rate=config.learning_rate,
        warmup_ratio=config.warmup_ratio,
        bf16=resolve_precision(config.precision) == "bf16",
        # a repeated text in a batch would be its own negative
        batch_sampler=BatchSamplers.NO_DUPLICATES,
        save_strategy="steps",
        save_steps=config.save_steps,
        save_total_limit=2,
        logging_steps=5,
        report_to="none",
        seed=config.seed,
        disable_tqdm=not progress,
        use_cpu=not has_cuda(),
        dataloader_drop_last=False,
    )
    trainer = SentenceTransformerTrainer(
        model=model, args=args, train_dataset=dataset, loss=make_loss(model, config)
    )
    started = time.perf_counter()
    output = trainer.train(resume_from_checkpoint=last)
    return TrainResult(
        steps=output.global_step,
        seconds=time.perf_counter() - started,
        train_loss=float(output.training_loss),
        examples=len(dataset),
        negatives=len(dataset.column_names) - 2,
        resumed_from=last,
        log=[e for e in trainer.state.log_history if "loss" in e],
    )
