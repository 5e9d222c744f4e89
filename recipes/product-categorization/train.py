"""Product categorization: fine-tune a small encoder on offer titles (written by `hf-autoresearch init`, then tuned).

This is the one file the agent edits. Run it by hand with `accelerate launch train.py` (or `python train.py`);
under the harness, the AUTORESEARCH_* environment supplies the data, model, seed, budget and output folder.
"""

import time
from pathlib import Path

import datasets
import torch
from transformers import (
    AutoModelForSequenceClassification,
    AutoTokenizer,
    DataCollatorWithPadding,
    Trainer,
    TrainingArguments,
)

from hf_autoresearch import experiment

# --- model ---------------------------------------------------------------------------------------
MODEL = "sentence-transformers/all-MiniLM-L6-v2"  # base model; the harness overrides it with AUTORESEARCH_MODEL
MAX_LENGTH = 32  # tokens kept per title (96% fit whole, median 18); search: choice(16, 24, 32, 48, 64)

# --- optimisation --------------------------------------------------------------------------------
LEARNING_RATE = 1e-4  # peak AdamW learning rate; search: log(1e-5, 3e-3)
BATCH_SIZE = 32  # examples per optimizer step; search: choice(8, 16, 32, 64)
EPOCHS = 1  # passes the schedule plans for; the time budget usually ends training first; search: int(1, 5)
# the deadline ends training long before the planned steps: a warm-up given as a share of them never ends
WARMUP_STEPS = 10  # optimizer steps warming the learning rate up; search: int(0, 100)
WEIGHT_DECAY = 0.01  # AdamW weight decay; search: float(0.0, 0.1)
LR_SCHEDULER = "linear"  # transformers scheduler name; search: choice("linear", "cosine", "constant_with_warmup")

# --- budget --------------------------------------------------------------------------------------
SAVE_RESERVE_SECONDS = 5  # stop training this long before the budget ends, to leave time to save

TEXT_COLUMN, LABEL_COLUMN = "text", "label"  # the harness writes every data set's rows under these names


def main():
    started = time.monotonic()
    seed = experiment.seed_everything()
    data_dir = experiment.data_dir(recipe_dir=Path(__file__).parent)
    rows = experiment.load_train_rows(data_dir)
    labels = experiment.load_labels(data_dir, rows, LABEL_COLUMN)
    label2id = {name: i for i, name in enumerate(labels)}

    model_name = experiment.model_name(MODEL)
    tokenizer = AutoTokenizer.from_pretrained(model_name)
    model = AutoModelForSequenceClassification.from_pretrained(
        model_name,
        num_labels=len(labels),
        id2label=dict(enumerate(labels)),
        label2id=label2id,
    )

    def tokenize(batch):
        encoded = tokenizer(batch[TEXT_COLUMN], truncation=True, max_length=MAX_LENGTH)
        encoded["labels"] = [label2id[str(label)] for label in batch[LABEL_COLUMN]]
        return encoded

    train = datasets.Dataset.from_list(rows)
    train = train.map(tokenize, batched=True, remove_columns=train.column_names)

    args = TrainingArguments(
        output_dir="trainer",
        per_device_train_batch_size=BATCH_SIZE,
        learning_rate=LEARNING_RATE,
        num_train_epochs=EPOCHS,
        warmup_steps=WARMUP_STEPS,
        weight_decay=WEIGHT_DECAY,
        lr_scheduler_type=LR_SCHEDULER,
        bf16=torch.cuda.is_available() and torch.cuda.is_bf16_supported(),
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
        data_collator=DataCollatorWithPadding(tokenizer),
        processing_class=tokenizer,
        callbacks=[experiment.deadline_callback(SAVE_RESERVE_SECONDS)],
    )
    train_started = time.monotonic()
    result = trainer.train()
    training_seconds = time.monotonic() - train_started

    out = experiment.output_dir()
    trainer.save_model(str(out))
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
            "num_params_M": sum(p.numel() for p in model.parameters()) / 1e6,
            "num_train_rows": len(rows),
            "seed": seed,
        },
        out,
    )


if __name__ == "__main__":
    main()
