"""Training the adapter with the Hugging Face Trainer on tokenised examples (loss on the answer
tokens only: the labels of the prompt are IGNORE, see masking)."""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

from llm_finetune.examples import Example
from llm_finetune.masking import tokenize_example


@dataclass
class TrainSettings:
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
class TrainOutcome:
    steps: int
    seconds: float
    train_loss: float
    examples: int
    too_long: int
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
    settings: TrainSettings,
    resume: bool = False,
    progress: bool = True,
) -> TrainOutcome:
    """Train `model` (a peft model) in place; checkpoints in `work_dir/checkpoints`."""
    import torch
    from transformers import DataCollatorForSeq2Seq, Trainer, TrainingArguments
    from transformers.trainer_utils import get_last_checkpoint

    dataset, too_long = tokenized_dataset(tokenizer, examples, settings.max_length)
    checkpoints = Path(work_dir) / "checkpoints"
    last = get_last_checkpoint(str(checkpoints)) if resume and checkpoints.is_dir() else None
    args = TrainingArguments(
        output_dir=str(checkpoints),
        num_train_epochs=settings.epochs,
        max_steps=settings.max_steps,
        per_device_train_batch_size=settings.batch_size,
        gradient_accumulation_steps=settings.gradient_accumulation,
        learning_rate=settings.learning_rate,
        lr_scheduler_type="cosine",
        warmup_steps=0.05,
        logging_steps=settings.logging_steps,
        save_strategy="steps",
        save_steps=settings.save_steps,
        save_total_limit=2,
        report_to="none",
        seed=settings.seed,
        disable_tqdm=not progress,
        use_cpu=not torch.cuda.is_available(),
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
    return TrainOutcome(
        steps=output.global_step,
        seconds=time.perf_counter() - started,
        train_loss=float(output.training_loss),
        examples=len(dataset),
        too_long=too_long,
        log=[e for e in trainer.state.log_history if "loss" in e],
    )
