"""Bad input through the CLI: each case is one clear paragraph on stderr that names the file, key or row and the
fix, exit status 2, no traceback, and nothing written: no run folder, no ledger, no branch. The README's
Reliability section lists the same cases."""

from __future__ import annotations

import csv
import io
import json
import re
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from conftest import git, read_csv, write_csv
from runs import start_run

from hf_autoresearch.cli import main
from hf_autoresearch.driver.decision import NoiseFloor
from hf_autoresearch.ledger import ExperimentRecord, Ledger
from hf_autoresearch.options import VERSION

RECIPE = "intent-categorization"


class NotFoundHub:
    """A Hub endpoint that knows no model (answers like the Hub does for a missing repo)."""

    def __enter__(self) -> str:
        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def do_GET(self):
                body = b'{"error": "Repository not found"}'
                self.send_response(404)
                self.send_header("X-Error-Code", "RepoNotFound")
                self.send_header("X-Error-Message", "Repository not found")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        return f"http://127.0.0.1:{self.server.server_address[1]}"

    def __exit__(self, *exc) -> None:
        self.server.shutdown()
        self.server.server_close()


def edit_toml(recipe: Path, old: str, new: str) -> None:
    file = recipe / "recipe.toml"
    assert old in file.read_text()
    file.write_text(file.read_text().replace(old, new, 1))


def data_copy(source: Path, folder: Path, train=None, test=None) -> Path:
    """A copy of the data folder; `train`/`test` turn the rows (a list of dicts) into bytes to write instead."""
    folder.mkdir(parents=True, exist_ok=True)
    for split, change in (("train", train), ("test", test)):
        rows = read_csv(source / f"{split}.csv")
        if change is None:
            write_csv(rows, folder / f"{split}.csv")
        else:
            (folder / f"{split}.csv").write_bytes(change(rows))
    return folder


def as_csv(rows: list[dict]) -> bytes:
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=["text", "label"], lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    return out.getvalue().encode()


def insert_row(at: int, raw: bytes):
    """Rows as csv bytes with a raw line inserted as data row `at` (1-based, the header not counted)."""

    def change(rows):
        lines = as_csv(rows).split(b"\n")
        return b"\n".join(lines[:at] + [raw] + lines[at:])

    return change


# each case: (setup(recipe, data, tmp_path) -> (data folder, model, extra CLI args), patterns the error must match)
CASES = {
    "malformed TOML": (
        lambda r, d, t: edit_toml(r, 'name = "intent-categorization"', 'name = "intent-categorization'),
        [r"recipe\.toml: not valid TOML: .*\(at line 1, column \d+\); fix the TOML syntax at that line"],
    ),
    "wrong type (a quoted number)": (
        lambda r, d, t: edit_toml(r, "seconds = 300", 'seconds = "300"'),
        [r'recipe\.toml: budget\.seconds must be int, got "300"; write it as seconds = 300$'],
    ),
    "wrong type (text for a number)": (
        lambda r, d, t: edit_toml(r, "selection_fraction = 0.1", 'selection_fraction = "a tenth"'),
        [r'data\.selection_fraction must be float, got "a tenth"; write it as selection_fraction = 0\.1'],
    ),
    "unknown key": (
        lambda r, d, t: edit_toml(r, 'text_column = "text"', 'text_colum = "text"'),
        [r"recipe\.toml: unknown key data\.text_colum; known keys in \[data\]: .*text_column"],
    ),
    "unknown task": (
        lambda r, d, t: edit_toml(r, 'task = "classification"', 'task = "clasification"'),
        [r"recipe\.toml: task = 'clasification': unknown task 'clasification'; use one of classification"],
    ),
    "data folder that does not exist": (
        lambda r, d, t: (t / "no-such-folder", None, []),
        [r"no-such-folder: no such data folder; pass --data a folder with train\.\* and test\.\* or a Hub id"],
    ),
    "data folder missing a split": (
        lambda r, d, t: (_only_train(d, t / "only-train"), None, []),
        [r"only-train: no test\.csv, test\.jsonl or test\.parquet; a local data folder needs both train\.\* and test"],
    ),
    "a test label that train does not have": (
        lambda r, d, t: (data_copy(d, t / "d", test=insert_row(3, b"where is my new pin,pin_forgotten")), None, []),
        [r"d \(test\), row 3: label 'pin_forgotten' never occurs in train \(1 test rows .*\); .*drop those rows"],
    ),
    "an empty text row": (
        lambda r, d, t: (data_copy(d, t / "d", train=insert_row(6, b",card_arrival")), None, []),
        [r"d \(train\), row 6: empty 'text'; drop the row or fill it in"],
    ),
    "a non-UTF-8 row": (
        lambda r, d, t: (data_copy(d, t / "d", train=insert_row(6, b"caf\xe9 card,card_arrival")), None, []),
        [r"train\.csv: cannot be read as csv \(line 7 is not UTF-8: byte 0xe9 at column 4\); save the file as UTF-8"],
    ),
    "a model folder that does not exist": (
        lambda r, d, t: (d, t / "no-such-model", []),
        [r"model .*no-such-model: no such folder; check --model: a Hub model id \(OWNER/NAME\) or a folder"],
    ),
    "a model folder without a saved model": (
        lambda r, d, t: (d, _empty_folder(t / "empty-model"), []),
        [r"empty-model: no config\.json \(nor adapter_config\.json\) in that folder; check --model"],
    ),
    "a model id the Hub does not know": (
        lambda r, d, t: (d, "no-such-org/no-such-model", []),
        [r"model 'no-such-org/no-such-model': no such model on the Hub .*; check --model: a Hub model id"],
    ),
    "a model id while the Hub cannot be reached": (
        lambda r, d, t: (d, "no-such-org/unreachable", []),
        [r"model 'no-such-org/unreachable' is not a local folder, not in the Hugging Face cache, and the Hub could "],
    ),
    "an invalid model id": (
        lambda r, d, t: (d, "not a model id!", []),
        [r"model 'not a model id!' is neither a local folder nor a valid Hub id"],
    ),
}


def _only_train(source: Path, folder: Path) -> Path:
    write_csv(read_csv(source / "train.csv"), folder / "train.csv")
    return folder


def _empty_folder(folder: Path) -> Path:
    folder.mkdir()
    (folder / "README.md").write_text("not a model\n")
    return folder


@pytest.fixture
def fake_model(tmp_path) -> Path:
    """The inputs fail before training, so a folder that looks like a saved model is enough."""
    folder = tmp_path / "model"
    folder.mkdir()
    (folder / "config.json").write_text("{}")
    return folder


def assert_one_clear_error(code: int, err: str, patterns: list[str]) -> str:
    """Exit status 2 and stderr holding only `error: ...`, one paragraph, matching every pattern."""
    assert code == 2, err
    text = err.strip()
    assert text.startswith("error: ") and text.count("error: ") == 1, err
    assert "Traceback" not in err and "\n\n" not in text, err
    for pattern in patterns:
        assert re.search(pattern, text, re.MULTILINE), f"{pattern!r} not in {text!r}"
    return text


@pytest.mark.parametrize("case", list(CASES))
def test_bad_input_is_one_clear_error_and_writes_nothing(
    case, project, banking_subset, fake_model, tmp_path, capsys, monkeypatch
):
    recipe = project / "recipes" / RECIPE
    setup, patterns = CASES[case]
    made = setup(recipe, banking_subset, tmp_path)
    data, model, extra = made if made else (banking_subset, None, [])
    runs = tmp_path / "runs"
    args = ["run", str(recipe), "--tag", "t", "--agent", "optuna", "--run-dir", str(runs), "--data", str(data)]
    args += ["--model", str(model or fake_model), "--max-experiments", "0", "--baseline-repeats", "1", *extra]
    if "unreachable" in str(model):
        monkeypatch.setenv("HF_ENDPOINT", "http://127.0.0.1:9")  # the discard port: nothing answers
        code = main(args)
    else:
        with NotFoundHub() as endpoint:
            monkeypatch.setenv("HF_ENDPOINT", endpoint)
            code = main(args)
    assert_one_clear_error(code, capsys.readouterr().err, patterns)
    assert not (runs / "t").exists()  # no run folder, so no ledger; the same command works once the input is fixed
    assert git(project, "branch", "--list", "autoresearch/*") == ""


def _start(project: Path, data: Path, tmp_path: Path):
    run = start_run(project / "recipes" / RECIPE, tmp_path / "runs", "t", agent="optuna", data=str(data))
    baseline = ExperimentRecord(0, "keep", "baseline", commit=run.workspace.head(), selection=0.5, holdout=0.4)
    baseline.decision = {"rule": "baseline", "noise": NoiseFloor([0.5], [0]).to_dict(), "direction": "maximize"}
    Ledger(run.folder).append(baseline)
    return run


def test_resume_of_a_run_from_a_newer_version_names_the_key_and_the_fix(project, banking_subset, tmp_path, capsys):
    run = _start(project, banking_subset, tmp_path)
    config = json.loads((run.folder / "run.json").read_text())
    (run.folder / "run.json").write_text(json.dumps({**config, "parallel_slots": 4, "version": 3}))
    before = {p.name: p.read_bytes() for p in (run.folder / "run.json", run.folder / "ledger.jsonl")}
    code = main(["run", "--resume", "--tag", "t", "--run-dir", str(tmp_path / "runs"), "--max-experiments", "1"])
    assert_one_clear_error(
        code,
        capsys.readouterr().err,
        [r"run\.json: unknown keys parallel_slots; the run was made by a newer hf-autoresearch: upgrade it"],
    )
    assert {p.name: p.read_bytes() for p in (run.folder / "run.json", run.folder / "ledger.jsonl")} == before


def test_resume_of_a_run_from_version_1_goes_on(project, banking_subset, tmp_path, capsys):
    """Version 1 kept the agent's options nested in `agent_options` and had no task or version: it resumes."""
    run = _start(project, banking_subset, tmp_path)
    config = json.loads((run.folder / "run.json").read_text())
    agent_keys = ("agent_model", "max_agent_turns", "max_agent_dollars", "agent_prices")
    old = {k: v for k, v in config.items() if k not in ("task", "version", *agent_keys)}
    old["agent_options"] = {"max_agent_turns": 7}
    (run.folder / "run.json").write_text(json.dumps(old))
    ledger = (run.folder / "ledger.jsonl").read_bytes()
    code = main(["run", "--resume", "--tag", "t", "--run-dir", str(tmp_path / "runs"), "--max-experiments", "0"])
    out = capsys.readouterr()
    assert code == 0, out.err
    assert "Traceback" not in out.err and "reached --max-experiments 0" in out.out
    resumed = json.loads((run.folder / "run.json").read_text())
    assert resumed["version"] == VERSION and resumed["task"] == "classification" and resumed["max_agent_turns"] == 7
    assert (run.folder / "ledger.jsonl").read_bytes() == ledger  # nothing re-run, nothing added


def test_resume_of_a_run_that_does_not_exist(tmp_path, capsys):
    code = main(["run", "--resume", "--tag", "nope", "--run-dir", str(tmp_path / "runs")])
    assert_one_clear_error(code, capsys.readouterr().err, [r"no run 'nope' in .*runs; `hf-autoresearch status` lists"])


def test_the_console_script_prints_no_traceback(project, tmp_path):
    """The real entry point (a subprocess): exit status 2 and the one-line error, for an error raised early."""
    import subprocess
    import sys

    recipe = project / "recipes" / RECIPE
    edit_toml(recipe, 'direction = "maximize"', 'direction = "up"')
    done = subprocess.run(
        [sys.executable, "-m", "hf_autoresearch.cli", "run", str(recipe), "--run-dir", str(tmp_path / "runs")],
        capture_output=True,
        text=True,
    )
    text = assert_one_clear_error(done.returncode, done.stderr, [r"metric\.direction must be maximize or minimize"])
    assert "recipe.toml" in text and not (tmp_path / "runs").exists()
