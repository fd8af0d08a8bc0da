"""The model to tune: the base in 4-bit NF4 with double quantisation (QLoRA, through
bitsandbytes) or in full precision (plain LoRA, when bitsandbytes is missing or not wanted), with
LoRA adapters from peft on the attention and MLP projections."""

from __future__ import annotations

from dataclasses import dataclass, field

from rag.generation import hf_model_dir
from rag.loading import has_cuda, model_loading


@dataclass
class LoraSettings:
    rank: int = 16
    alpha: int = 32
    dropout: float = 0.05
    target_modules: list[str] = field(
        default_factory=lambda: ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]
    )


def bitsandbytes_available() -> bool:
    try:
        import bitsandbytes  # noqa: F401
    except ImportError:
        return False
    return True


def load_trainable(base: str, lora: LoraSettings, quantize: bool = True):
    """(peft model with trainable LoRA weights, tokenizer, "qlora" or "lora")."""
    import torch
    from peft import LoraConfig, get_peft_model, prepare_model_for_kbit_training
    from transformers import AutoModelForCausalLM, AutoTokenizer

    path = hf_model_dir(base)
    with model_loading:
        tokenizer = AutoTokenizer.from_pretrained(path)
        cuda = has_cuda()
        method = "qlora" if quantize and bitsandbytes_available() else "lora"
        if method == "qlora":
            from transformers import BitsAndBytesConfig

            quantization = BitsAndBytesConfig(
                load_in_4bit=True,
                bnb_4bit_quant_type="nf4",
                bnb_4bit_use_double_quant=True,
                bnb_4bit_compute_dtype=torch.bfloat16 if cuda else torch.float32,
            )
            model = AutoModelForCausalLM.from_pretrained(
                path, quantization_config=quantization, device_map="auto" if cuda else "cpu"
            )
            model = prepare_model_for_kbit_training(model, use_gradient_checkpointing=True)
        else:
            model = AutoModelForCausalLM.from_pretrained(path, dtype=torch.float32)
            if cuda:
                model = model.to("cuda")
            model.gradient_checkpointing_enable()
            model.enable_input_require_grads()  # checkpointing needs a grad path into the frozen base
    config = LoraConfig(
        r=lora.rank,
        lora_alpha=lora.alpha,
        lora_dropout=lora.dropout,
        target_modules=lora.target_modules,
        task_type="CAUSAL_LM",
    )
    return get_peft_model(model, config), tokenizer, method
