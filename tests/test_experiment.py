"""The helper train.py imports (hf_autoresearch/experiment.py): its callback records the training curve."""

from __future__ import annotations

import json
import os
import time

import pytest

from hf_autoresearch import experiment, testing
from hf_autoresearch.executors.trial import read_training


@pytest.fixture
def tiny(tmp_path):
    texts = [f"sentence number {i} about cards" for i in range(40)] + [f"rate {i} exchange" for i in range(40)]
    return texts, testing.tiny_bert(texts, tmp_path / "model")


def test_the_deadline_callback_records_the_curve_beside_the_model(tiny, tmp_path, monkeypatch):
    import datasets
    import torch
    from transformers import (
        AutoModelForSequenceClassification,
        AutoTokenizer,
        DataCollatorWithPadding,
        Trainer,
        TrainingArguments,
    )

    texts, model_dir = tiny
    out = tmp_path / "out"
    monkeypatch.setenv("AUTORESEARCH_OUTPUT_DIR", str(out))
    monkeypatch.setenv("AUTORESEARCH_TIME_BUDGET", "600")
    monkeypatch.setenv("AUTORESEARCH_DEADLINE", repr(time.time() + 598))  # launched 2 s ago
    tokenizer = AutoTokenizer.from_pretrained(model_dir)
    model = AutoModelForSequenceClassification.from_pretrained(model_dir, num_labels=2)
    rows = [{"text": t, "labels": int(i >= 40)} for i, t in enumerate(texts)]
    train = datasets.Dataset.from_list(rows).map(lambda b: tokenizer(b["text"]), batched=True, remove_columns=["text"])
    args = TrainingArguments(
        output_dir=str(tmp_path / "trainer"),
        per_device_train_batch_size=8,
        num_train_epochs=3,  # 10 steps an epoch: 30 planned
        max_steps=-1,
        learning_rate=1e-3,
        lr_scheduler_type="linear",
        logging_steps=2,
        save_strategy="no",
        report_to="none",
        use_cpu=True,
    )
    callback = experiment.deadline_callback(reserve_seconds=5)
    stop_after = 12

    class StopEarly(type(callback)):  # the deadline, simulated: training stops after 12 of 30 steps
        def on_step_end(self, args, state, control, **kwargs):
            super().on_step_end(args, state, control, **kwargs)
            control.should_training_stop = state.global_step >= stop_after
            return control

    stopper = StopEarly()
    trainer = Trainer(
        model=model,
        args=args,
        train_dataset=train,
        data_collator=DataCollatorWithPadding(tokenizer),
        callbacks=[stopper],
    )
    torch.manual_seed(0)
    trainer.train()
    trainer.save_model(str(out))

    curve = json.loads((out / experiment.CURVE_FILE).read_text())
    assert (curve["planned_steps"], curve["completed_steps"]) == (30, 12)
    assert curve["planned_epochs"] == 3 and curve["epochs"] == pytest.approx(1.2)
    assert [p["step"] for p in curve["points"]] == [2, 4, 6, 8, 10, 12]
    assert curve["final_loss"] == curve["points"][-1]["loss"] and curve["final_loss"] > 0
    # linear decay from 1e-3 over 30 planned steps: at step 12 the rate is about 1e-3 * 18 / 30
    assert curve["learning_rate"] == pytest.approx(1e-3 * 19 / 30, rel=0.1)
    assert curve["samples_per_step"] == 8 and curve["samples_per_second"] > 0
    assert 2 <= curve["first_step_seconds"] < 120
    # the harness adds the seconds from the last step to the saved model
    training = read_training(out)
    assert 0 <= training["save_seconds"] < 60 and training["points"] == curve["points"]
    os.utime(out / "config.json", (curve["train_end_at"] + 7, curve["train_end_at"] + 7))
    for other in out.iterdir():
        if other.name not in ("config.json", experiment.CURVE_FILE):
            os.utime(other, (curve["train_end_at"] + 1, curve["train_end_at"] + 1))
    assert read_training(out)["save_seconds"] == pytest.approx(7)


def test_no_curve_file_means_no_training_facts(tmp_path):
    assert read_training(tmp_path) == {}
    (tmp_path / experiment.CURVE_FILE).write_text("[1, 2]")
    assert read_training(tmp_path) == {}
