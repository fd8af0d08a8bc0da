"""Training the adapter with the Hugging Face Trainer on tokenised examples (loss on the answer
tokens only: the labels of the prompt are IGNORE, see masking)."""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

from llm_finetune.examples import Example
from llm_finetune.masking import tokenize_example
from rag.loading import has_cuda


@dataclass
class TrainConfig:
    """How to train the adapter: the Hugging Face Trainer's settings `rag finetune-llm` sets."""

    epochs: float = 1.0
    batch_size: int = 4
    gradient_accumulation: int = 1
    learning_rate: float = 2e-4
    max_length: int = 1024
    max_steps: int = -1
    save_steps: int = 50
    logging_steps: int = 5
    seed: int = 42


@dataclass
class TrainResult:
    steps: int
    seconds: float
    train_loss: float
    examples: int
    too_long: int  # examples left out: prompt and answer did not fit in `max_length` tokens
    resumed_from: str | None
    log: list[dict]


def tokenized_dataset(tokenizer, examples: list[Example], max_length: int):
    from datasets import Dataset

    rows = [tokenize_example(tokenizer, e, max_length) for e in examples]
    kept = [r for r in rows if r is not None]
    if not kept:
        raise ValueError(f"no training example fits in {max_length} tokens")
    return Dataset.from_list(kept), len(rows) - len(kept)


def train_adapter(
    model,
    tokenizer,
    examples: list[Example],
    work_dir: Path,
    config: TrainConfig,
    resume: bool = False,
    progress: bool = True,
) -> TrainResult:
    """Train `model` (a peft model) in place; checkpoints in `work_dir/checkpoints`."""
    from transformers import DataCollatorForSeq2Seq, Trainer, TrainingArguments
    from transformers.trainer_utils import get_last_checkpoint

    dataset, too_long = tokenized_dataset(tokenizer, examples, config.max_length)
    checkpoints = Path(work_dir) / "checkpoints"
    last = get_last_checkpoint(str(checkpoints)) if resume and checkpoints.is_dir() else None
    args = TrainingArguments(
        output_dir=str(checkpoints),
        num_train_epochs=config.epochs,
        max_steps=config.max_steps,
        per_device_train_batch_size=config.batch_size,
        gradient_accumulation_steps=config.gradient_accumulation,
        learning_rate=config.learning_rate,
        lr_scheduler_type="cosine",
        warmup_steps=0.05,
        logging_steps=config.logging_steps,
        save_strategy="steps",
        save_steps=config.save_steps,
        save_total_limit=2,
        report_to="none",
        seed=config.seed,
        disable_tqdm=not progress,
        use_cpu=not has_cuda(),
        gradient_checkpointing=True,
        gradient_checkpointing_kwargs={"use_reentrant": False},
        remove_unused_columns=False,
    )
    # pads input_ids with the pad token and labels with IGNORE, batch by batch
    collator = DataCollatorForSeq2Seq(tokenizer, padding=True, label_pad_token_id=-100)
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    trainer = Trainer(model=model, args=args, train_dataset=dataset, data_collator=collator)
    started = time.perf_counter()
    output = trainer.train(resume_from_checkpoint=last)
    return TrainResult(
        steps=output.global_step,
        seconds=time.perf_counter() - started,
        train_loss=float(output.training_loss),
        examples=len(dataset),
        too_long=too_long,
        resumed_from=last,
        log=[e for e in trainer.state.log_history if "loss" in e],
    )
