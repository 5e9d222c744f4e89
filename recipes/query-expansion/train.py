"""Query expansion (QMD): fine-tune a small instruct model to write lex / vec / hyde lines for a search query.

This is the one file the agent edits. Run it by hand with `accelerate launch train.py` (or `python train.py`);
under the harness, the AUTORESEARCH_* environment supplies the data, model, seed, budget and output folder.
The prompt comes from hf_autoresearch.tasks.query_expansion, the same code the frozen evaluation uses: keep it, or
the model is trained on a prompt it is never asked with.
"""

import time
from pathlib import Path

import datasets
import torch
from transformers import (
    AutoModelForCausalLM,
    AutoTokenizer,
    DataCollatorForSeq2Seq,
    Trainer,
    TrainingArguments,
)

from hf_autoresearch import experiment
from hf_autoresearch.tasks import query_expansion

# --- model ---------------------------------------------------------------------------------------
MODEL = "HuggingFaceTB/SmolLM2-135M-Instruct"  # base model; the harness overrides it with AUTORESEARCH_MODEL
MAX_LENGTH = 320  # tokens kept per example (prompt + expansion); the longest QMD example is ~260

# --- LoRA ----------------------------------------------------------------------------------------
USE_LORA = True  # False: full fine-tuning of every weight
LORA_R = 16  # adapter rank; search: choice(4, 8, 16, 32, 64)
LORA_ALPHA = 32  # adapter scale numerator (scale = alpha / r)
LORA_DROPOUT = 0.05  # dropout on the adapter input; search: float(0.0, 0.2)
LORA_TARGETS = "all-linear"  # which modules get adapters: "all-linear" or a list like ["q_proj", "v_proj"]
MERGE_ADAPTER = True  # save merged weights (True) or the adapter alone plus a pointer to its base (False)

# --- data ----------------------------------------------------------------------------------------
INCLUDE_ONLY_MODE = True  # also train on QMD's "<query> /only:lex" rows (one kind of line only)

# --- optimisation --------------------------------------------------------------------------------
# On CPU a step of 4 examples takes 5-30 s, so the format must be learned in a few dozen steps: a high LoRA rate,
# small batches, a 3-step warmup (measured: 5 of 8 expansions well-formed after 20 steps, 8 of 8 after 60; the
# former 2e-4, batches of 8 and a 19-step warmup gave none after the 5 steps a loaded CPU managed in 300 s)
LEARNING_RATE = 1e-3  # peak AdamW learning rate; search: log(1e-5, 2e-3)
BATCH_SIZE = 4  # examples per optimizer step; search: choice(4, 8, 16, 32)
EPOCHS = 2  # upper bound on passes over the data; the time budget usually ends training first
WARMUP = 0.002  # share of the planned steps spent warming the learning rate up (~3 steps); search: float(0.0, 0.2)
WEIGHT_DECAY = 0.0  # AdamW weight decay
LR_SCHEDULER = "cosine"  # transformers scheduler name; search: choice("linear", "cosine", "constant_with_warmup")

# --- budget --------------------------------------------------------------------------------------
SAVE_RESERVE_SECONDS = 15  # stop training this long before the budget ends, to leave time to merge and save


def main():
    started = time.monotonic()
    seed = experiment.seed_everything()
    data_dir = experiment.data_dir(recipe_dir=Path(__file__).parent)
    rows = experiment.load_train_rows(data_dir)
    if not INCLUDE_ONLY_MODE:
        rows = [r for r in rows if query_expansion.only_mode(r["query"]) is None]

    model_name = experiment.model_name(MODEL)
    tokenizer = AutoTokenizer.from_pretrained(model_name)
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    dtype = torch.bfloat16 if torch.cuda.is_available() and torch.cuda.is_bf16_supported() else torch.float32
    model = AutoModelForCausalLM.from_pretrained(model_name, dtype=dtype)
    num_params = sum(p.numel() for p in model.parameters())
    if USE_LORA:
        from peft import LoraConfig, get_peft_model

        lora = LoraConfig(
            r=LORA_R,
            lora_alpha=LORA_ALPHA,
            lora_dropout=LORA_DROPOUT,
            target_modules=LORA_TARGETS,
            task_type="CAUSAL_LM",
        )
        model = get_peft_model(model, lora)
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)

    def tokenize(row):
        # the loss covers the expansion only: prompt tokens are masked with -100
        prompt = tokenizer(query_expansion.prompt_text(tokenizer, row["query"]), add_special_tokens=False)["input_ids"]
        answer = query_expansion.completion_text(tokenizer, row["query"], row["output"])
        completion = tokenizer(answer, add_special_tokens=False)["input_ids"]
        input_ids = (prompt + completion)[:MAX_LENGTH]
        labels = ([-100] * len(prompt) + completion)[:MAX_LENGTH]
        return {"input_ids": input_ids, "attention_mask": [1] * len(input_ids), "labels": labels}

    train = datasets.Dataset.from_list(rows)
    train = train.map(tokenize, remove_columns=train.column_names)

    args = TrainingArguments(
        output_dir="trainer",
        per_device_train_batch_size=BATCH_SIZE,
        learning_rate=LEARNING_RATE,
        num_train_epochs=EPOCHS,
        warmup_steps=WARMUP,
        weight_decay=WEIGHT_DECAY,
        lr_scheduler_type=LR_SCHEDULER,
        bf16=dtype == torch.bfloat16,
        save_strategy="no",
        logging_steps=10,
        report_to="none",
        seed=seed,
        dataloader_num_workers=0,
        dataloader_pin_memory=torch.cuda.is_available(),
    )
    trainer = Trainer(
        model=model,
        args=args,
        train_dataset=train,
        data_collator=DataCollatorForSeq2Seq(tokenizer, padding=True, label_pad_token_id=-100),
        processing_class=tokenizer,
        callbacks=[experiment.deadline_callback(SAVE_RESERVE_SECONDS)],
    )
    train_started = time.monotonic()
    result = trainer.train()
    training_seconds = time.monotonic() - train_started

    out = experiment.output_dir()
    model = trainer.model
    if USE_LORA and MERGE_ADAPTER:
        model = model.merge_and_unload()
    model.save_pretrained(str(out))
    tokenizer.save_pretrained(str(out))

    peak_vram_mb = torch.cuda.max_memory_allocated() / 2**20 if torch.cuda.is_available() else 0.0
    experiment.write_summary(
        {
            "training_seconds": training_seconds,
            "total_seconds": time.monotonic() - started,
            "peak_vram_mb": peak_vram_mb,
            "num_steps": trainer.state.global_step,
            "epochs": trainer.state.epoch or 0.0,
            "train_loss": result.training_loss,
            "num_params_M": num_params / 1e6,
            "trainable_params_M": trainable / 1e6,
            "num_train_rows": len(rows),
            "seed": seed,
        },
        out,
    )


if __name__ == "__main__":
    main()
