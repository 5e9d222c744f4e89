"""Hub publishing against a local stand-in of the Hub API (tests/hub_server.py): a contract test of our calls.

What the server received is checked: the branch, one commit per keep with the right files, the tags, main after
--promote, and a README whose metadata huggingface_hub's own ModelCard parser reads back.
"""

from __future__ import annotations

import json
import threading
import time

import huggingface_hub.constants
import pytest
from conftest import git, make_patch
from fake_run import fake_run
from hub_server import FakeHub
from huggingface_hub import ModelCard
from run_shapes import save_weights, write_larger_baseline

from hf_autoresearch.cli import main
from hf_autoresearch.hub import HUB_FILE, HubError, HubPublisher, model_card, model_kind, pushed
from hf_autoresearch.ledger import Ledger
from hf_autoresearch.reporting.summary import RunSummary

OUTCOMES = [
    dict(status="keep", description="baseline", selection=0.30, holdout=0.28),
    dict(status="keep", description="Raise the learning rate", selection=0.50, holdout=0.47, lr=3),
    dict(status="discard", description="Tiny learning rate", selection=0.20, lr=1),
    dict(status="crash", description="Crash", reason="train.py exited with status 1"),
    dict(status="keep", description="Even higher learning rate", selection=0.60, holdout=0.55, lr=5),
]


@pytest.fixture
def no_token(monkeypatch, tmp_path):
    for name in ("HF_TOKEN", "HUGGING_FACE_HUB_TOKEN", "HF_OIDC_RESOURCE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setattr(huggingface_hub.constants, "HF_TOKEN_PATH", str(tmp_path / "no-token"))


@pytest.fixture
def run_folder(project, tmp_path):
    return fake_run(project, tmp_path / "runs", "t1", OUTCOMES)


def publish(folder, hub, **kwargs) -> HubPublisher:
    publisher = HubPublisher(folder, "user/intent", endpoint=hub.endpoint, token=hub.token, retry_wait=0.01, **kwargs)
    publisher.prepare()
    for record in Ledger(folder).records():
        publisher.on_record(None, record)  # the loop's callback: keeps are queued, the rest ignored
    return publisher


def test_each_keep_is_a_tagged_commit_on_the_run_branch_with_model_code_and_card(run_folder, project):
    records = Ledger(run_folder).records()
    with FakeHub() as hub:
        assert publish(run_folder, hub, promote=True).close() == {}
        repo = hub.repos["user/intent"]
    assert repo.private
    assert set(repo.branches) == {"main", "autoresearch/t1"}
    assert set(repo.tags) == {"t1-exp-0000", "t1-exp-0001", "t1-exp-0004"}

    history = repo.history("autoresearch/t1")
    assert [c.message.split(":")[0] for c in history[:3]] == ["exp-0004", "exp-0001", "exp-0000"]
    entries = pushed(run_folder, "user/intent")
    for record in (r for r in records if r.status == "keep"):
        tag = f"t1-exp-{record.number:04d}"
        commit = repo.resolve(tag)
        # the message names the experiment, its score and the git commit; hub.jsonl maps git <-> Hub both ways
        assert f"{record.experiment}: {record.description}" in commit.message
        assert f"{record.selection:.4f}" in commit.message and record.commit[:12] in commit.message
        assert entries[record.number]["hub_commit"] == commit.oid == repo.tags[tag]
        assert entries[record.number]["git_commit"] == record.commit
        files = commit.files
        assert files["model.safetensors"] == f"weights of {record.experiment}".encode()
        assert {"config.json", "tokenizer.json", "summary.json", "train.py", "autoresearch.json"} <= set(files)
        assert "training_args.bin" not in files
        assert files["train.py"].decode() == git(project, "show", f"{record.commit}:{_train_py_rel()}") + "\n"
        assert json.loads(files["autoresearch.json"])["git_commit"] == record.commit

        card = ModelCard(files["README.md"].decode())
        results = {(r.dataset_split, r.metric_type): r.metric_value for r in card.data.eval_results}
        assert results[("selection", "accuracy")] == pytest.approx(record.selection)
        assert results[("holdout", "accuracy")] == pytest.approx(record.holdout)
        assert card.data.base_model == "sentence-transformers/all-MiniLM-L6-v2"
        assert card.data.datasets == ["PolyAI/banking77"]
        assert f'revision="{tag}"' in card.text
    # the card of the last keep carries its lineage and its diff against the baseline
    last = ModelCard(repo.files("t1-exp-0004")["README.md"].decode()).text
    assert "| exp-0001 |" in last and "| exp-0004 |" in last and "| exp-0002 |" not in last
    assert "-LEARNING_RATE = 5e-5" in last and "+LEARNING_RATE = 5e-4" in last
    # --promote: main holds the best experiment's files, and hub.jsonl says so
    assert repo.files("main")["model.safetensors"] == b"weights of exp-0004"
    assert "Promote exp-0004" in repo.history("main")[0].message
    assert every_readme_was_validated(hub, repo)


def every_readme_was_validated(hub, repo) -> bool:
    readmes = {c.files["README.md"].decode() for c in repo.commits.values() if "README.md" in c.files}
    return readmes <= set(hub.validated)


def _train_py_rel() -> str:
    return "recipes/intent-categorization/train.py"


def test_a_failed_push_is_retried_reported_and_completed_by_the_push_command(run_folder, monkeypatch, capsys):
    with FakeHub() as hub:
        hub.fail_commits = 1  # one transient failure: the retry succeeds
        publisher = HubPublisher(run_folder, "user/intent", endpoint=hub.endpoint, token=hub.token, retry_wait=0.01)
        publisher.prepare()
        records = {r.number: r for r in Ledger(run_folder).records()}
        assert publisher.push(records[0])["tag"] == "t1-exp-0000"

        hub.fail_commits = 10  # the Hub stays down: reported, the local model is untouched
        publisher.retries = 2
        assert publisher.push(records[1]) is None
        assert "500" in publisher.failures[1]
        assert (run_folder / "models" / "exp-0001" / "model.safetensors").is_file()
        assert set(pushed(run_folder)) == {0}

        hub.fail_commits = 0
        monkeypatch.setenv("HF_ENDPOINT", hub.endpoint)
        monkeypatch.setenv("HF_TOKEN", hub.token)
        assert main(["push", "t1", "--repo", "user/intent", "--run-dir", str(run_folder.parent)]) == 0
        assert "2 experiment(s) pushed" in capsys.readouterr().out
        assert set(hub.repos["user/intent"].tags) == {"t1-exp-0000", "t1-exp-0001", "t1-exp-0004"}
        assert set(pushed(run_folder)) == {0, 1, 4}
        # pushing again is a no-op
        assert main(["push", "t1", "--repo", "user/intent", "--run-dir", str(run_folder.parent)]) == 0
        assert len(hub.repos["user/intent"].history("autoresearch/t1")) == 4  # initial commit + 3 keeps


def keeps(folder) -> dict:
    return {r.number: r for r in Ledger(folder).records() if r.status == "keep"}


def lines_of(folder) -> list[dict]:
    return [json.loads(line) for line in (folder / HUB_FILE).read_text().splitlines()]


def branch_commits(hub, number: int) -> list:
    return [
        c for c in hub.repos["user/intent"].history("autoresearch/t1") if c.message.startswith(f"exp-{number:04d}")
    ]


def test_a_commit_whose_answer_was_lost_is_tagged_not_committed_again(run_folder):
    with FakeHub() as hub:
        publisher = HubPublisher(run_folder, "user/intent", endpoint=hub.endpoint, token=hub.token, retry_wait=0.01)
        publisher.prepare()
        hub.lose_commit_answers = 1  # the commit lands; the client sees the connection drop
        entry = publisher.push(keeps(run_folder)[1])
        assert entry is not None and hub.commit_requests == 1  # the retry found the commit: no second POST
        [commit] = branch_commits(hub, 1)
        assert hub.repos["user/intent"].tags["t1-exp-0001"] == commit.oid == entry["hub_commit"]
        assert [line["number"] for line in lines_of(run_folder)] == [1]


def test_pushing_again_or_after_a_lost_hub_jsonl_makes_no_commit_and_one_line(run_folder):
    with FakeHub() as hub:
        publisher = HubPublisher(run_folder, "user/intent", endpoint=hub.endpoint, token=hub.token, retry_wait=0.01)
        publisher.prepare()
        first = publisher.push(keeps(run_folder)[1])
        assert publisher.push(keeps(run_folder)[1])["hub_commit"] == first["hub_commit"]
        assert len(lines_of(run_folder)) == 1  # the second push found the tag: nothing new to record
        (run_folder / HUB_FILE).unlink()  # a session that died after the tag, before writing its line
        again = {e["number"]: e["hub_commit"] for e in publisher.push_missing()}
        assert again[1] == first["hub_commit"]
        assert hub.commit_requests == 3 and len(branch_commits(hub, 1)) == 1  # exp-0000 and exp-0004 are new
        assert sorted(line["number"] for line in lines_of(run_folder)) == [0, 1, 4]


def test_a_failed_tag_is_redone_without_a_second_commit(run_folder):
    with FakeHub() as hub:
        publisher = HubPublisher(run_folder, "user/intent", endpoint=hub.endpoint, token=hub.token, retry_wait=0.01)
        publisher.prepare()
        hub.fail_tags = 1
        entry = publisher.push(keeps(run_folder)[0])
        assert hub.commit_requests == 1 and len(branch_commits(hub, 0)) == 1
        assert hub.repos["user/intent"].tags["t1-exp-0000"] == entry["hub_commit"]
        assert len(lines_of(run_folder)) == 1


def test_a_500_then_success_makes_one_commit_and_one_line(run_folder):
    with FakeHub() as hub:
        publisher = HubPublisher(run_folder, "user/intent", endpoint=hub.endpoint, token=hub.token, retry_wait=0.01)
        publisher.prepare()
        hub.fail_commits = 1
        assert publisher.push(keeps(run_folder)[0]) is not None
        assert hub.commit_requests == 2 and len(branch_commits(hub, 0)) == 1
        assert len(lines_of(run_folder)) == 1 and publisher.failures == {}


@pytest.mark.parametrize("fault", ["reject_commits", "reject_metadata"])
def test_a_client_error_or_rejected_metadata_is_not_retried(run_folder, fault):
    with FakeHub() as hub:
        publisher = HubPublisher(run_folder, "user/intent", endpoint=hub.endpoint, token=hub.token, retry_wait=0.01)
        publisher.prepare()
        setattr(hub, fault, 1 if fault == "reject_commits" else True)
        assert publisher.push(keeps(run_folder)[0]) is None
        assert "not retried" in publisher.failures[0]
        assert ("Invalid metadata" if fault == "reject_metadata" else "400") in publisher.failures[0]
        assert hub.commit_requests == (1 if fault == "reject_commits" else 0)  # one try; metadata fails before
        assert len(hub.validated) == 1 and not (run_folder / HUB_FILE).exists()


def test_a_push_cut_after_its_commit_landed_is_finished_by_the_next_session(run_folder):
    with FakeHub() as hub:
        first = HubPublisher(run_folder, "user/intent", endpoint=hub.endpoint, token=hub.token, retries=1)
        first.prepare()
        hub.lose_commit_answers = 1  # the session dies with the answer: commit on the Hub, nothing recorded
        assert first.push(keeps(run_folder)[0]) is None and pushed(run_folder) == {}
        (run_folder / HUB_FILE).write_text('{"number": 9, "experiment": "exp-00')  # and a line torn by the crash

        second = HubPublisher(run_folder, "user/intent", endpoint=hub.endpoint, token=hub.token, retry_wait=0.01)
        second.prepare()
        assert len(second.push_missing()) == 3
        repo = hub.repos["user/intent"]
        assert hub.commit_requests == 3  # exp-0000's landed commit was tagged, not made again
        assert [len(branch_commits(hub, n)) for n in (0, 1, 4)] == [1, 1, 1]
        assert set(repo.tags) == {"t1-exp-0000", "t1-exp-0001", "t1-exp-0004"}
        assert sorted(pushed(run_folder)) == [0, 1, 4]  # the torn line did not swallow the next one
        assert second.push_missing() == [] and hub.commit_requests == 3


def test_close_gives_up_on_a_stuck_upload_and_reports_what_was_not_pushed(run_folder):
    lines = []
    with FakeHub() as hub:
        hub.hold_commits = threading.Event()
        publisher = publish(run_folder, hub, log=lines.append)  # three keeps queued; the first commit hangs
        worker = publisher._thread
        started = time.monotonic()
        failures = publisher.close(promote=True, timeout=0.5)
        assert time.monotonic() - started < 5
        assert set(failures) == {0, 1, 4, -1} and all("not pushed" in failures[n] for n in (0, 1, 4))
        assert "not promoted" in failures[-1]
        assert "not pushed: exp-0000, exp-0001, exp-0004" in "\n".join(lines)
        hub.hold_commits.set()  # the upload comes back: it records itself; nothing after it is pushed
        worker.join(10)
        assert not worker.is_alive() and sorted(pushed(run_folder)) == [0]
        assert len(hub.repos["user/intent"].history("main")) == 1  # --promote was not attempted


def test_the_card_names_the_task_and_compares_with_the_larger_baseline_with_both_parameter_counts(
    run_folder, monkeypatch
):
    save_weights(run_folder / "models" / "exp-0000", {"w": (227, 100)})
    save_weights(run_folder / "models" / "exp-0004", {"w": (227, 100)})
    write_larger_baseline(
        run_folder, monkeypatch, model="acme/larger", selection=0.5, holdout=0.5, shapes={"w": (1095, 100)}
    )
    summary = RunSummary.load(run_folder)
    card = model_card(summary, keeps(run_folder)[4], "user/intent")
    assert card.data.pipeline_tag == "text-classification"
    text = card.text
    assert "| **this revision (exp-0004)** | 22.7K | **0.6000** | **0.5500** |" in text
    assert "| baseline (exp-0000, the recipe as written) | 22.7K | 0.3000 | 0.2800 |" in text
    assert "| larger baseline `acme/larger` | 109.5K | 0.5000 | 0.5000 |" in text
    assert "(4.8x the parameters of this model)" in text and "selection +20.0%, holdout +10.0%" in text
    assert "AutoModelForSequenceClassification.from_pretrained" in text

    # the task comes from run.json (then the recipe), not from the folder's name nor the saved architecture
    config = json.loads((run_folder / "run.json").read_text())
    (run_folder / "run.json").write_text(json.dumps({**config, "task": "query-expansion"}))
    card = model_card(RunSummary.load(run_folder), keeps(run_folder)[4], "user/intent")
    assert card.data.pipeline_tag == "text-generation" and "AutoModelForCausalLM.from_pretrained" in card.text


def test_without_a_known_task_the_saved_model_says_what_it_is(tmp_path):
    (tmp_path / "config.json").write_text(json.dumps({"architectures": ["LlamaForCausalLM"]}))
    assert model_kind(tmp_path, None).auto_class == "AutoModelForCausalLM"
    assert model_kind(tmp_path, "classification").pipeline == "text-classification"
    assert model_kind(tmp_path, "a-task-not-installed").auto_class == "AutoModelForCausalLM"
    (tmp_path / "adapter_config.json").write_text(
        json.dumps({"base_model_name_or_path": "a/b", "task_type": "SEQ_CLS"})
    )
    kind = model_kind(tmp_path, None)
    assert (kind.auto_class, kind.adapter_base, kind.library) == (
        "AutoPeftModelForSequenceClassification",
        "a/b",
        "peft",
    )
    assert model_kind(tmp_path, "query-expansion").auto_class == "AutoPeftModelForCausalLM"


def test_dry_run_says_what_would_be_pushed_and_sends_nothing(run_folder, no_token):
    lines = []
    publisher = HubPublisher(run_folder, "user/intent", dry_run=True, endpoint="http://127.0.0.1:9", log=lines.append)
    publisher.prepare()
    assert publisher.push_missing() == []
    text = "\n".join(lines)
    assert "would create the private repo user/intent" in text
    assert "would push exp-0004 to user/intent@autoresearch/t1 and tag it t1-exp-0004" in text
    assert "model.safetensors" in text and "training_args.bin" not in text
    card = ModelCard((run_folder / "hub-dry-run" / "exp-0004" / "README.md").read_text())
    assert card.data.eval_results[0].metric_value == pytest.approx(0.6)
    assert pushed(run_folder) == {}


def test_no_token_or_a_rejected_token_fails_before_any_training(project, tmp_path, no_token, capsys):
    recipe = project / "recipes" / "intent-categorization"
    patches = tmp_path / "p"
    make_patch(recipe, "x", [("EPOCHS = 3", "EPOCHS = 2")], patches / "a.patch")
    run_dir = tmp_path / "runs"
    args = ["run", str(recipe), "--patches", str(patches), "--run-dir", str(run_dir), "--push-to-hub", "user/intent"]
    assert main(args) == 2
    assert "hf auth login" in capsys.readouterr().err
    assert not run_dir.exists()  # nothing was prepared
    assert main([*args[:-1], "not a repo id"]) == 2
    assert "OWNER/NAME" in capsys.readouterr().err

    with FakeHub() as hub:
        publisher = HubPublisher(tmp_path, "user/intent", endpoint=hub.endpoint, token="hf_wrong")
        (tmp_path / "run.json").write_text(json.dumps({"tag": "t9"}))
        with pytest.raises(HubError, match="write access"):
            publisher.prepare()


@pytest.mark.slow
def test_a_cpu_run_with_push_to_hub_leaves_branch_tags_cards_and_a_loadable_model(pushed_run, tmp_path):
    from transformers import AutoModelForSequenceClassification

    folder, hub, project = pushed_run
    records = Ledger(folder).records()
    kept = [r for r in records if r.status == "keep"]
    assert len(records) == 2 and records[0].status == "keep"  # the edit is kept or discarded, by its score
    repo = hub.repos["user/intent"]
    assert repo.private and "autoresearch/e2e" in repo.branches
    # one tagged Hub commit per keep, in order, and nothing for a discard
    assert set(repo.tags) == {f"e2e-exp-{r.number:04d}" for r in kept}
    history = [c.message.split(":")[0] for c in repo.history("autoresearch/e2e")]
    assert history == [r.experiment for r in reversed(kept)] + ["initial commit"]
    best = kept[-1]
    tag = f"e2e-exp-{best.number:04d}"
    files = repo.files(tag)
    assert pushed(folder)[best.number]["hub_commit"] == repo.tags[tag]
    card = ModelCard(files["README.md"].decode())
    scores = {(r.dataset_split, r.metric_type): r.metric_value for r in card.data.eval_results}
    assert scores[("selection", "accuracy")] == pytest.approx(best.selection, abs=1e-6)
    assert scores[("holdout", "accuracy")] == pytest.approx(best.holdout, abs=1e-6)
    assert card.data.base_model is None  # a local base model is no Hub id: left out of the metadata the Hub checks
    assert f'revision="{tag}"' in card.text
    assert files["train.py"].decode() == git(project, "show", f"{best.commit}:{_train_py_rel()}") + "\n"
    assert repo.files("main")["README.md"] == files["README.md"]  # --promote
    # the revision holds a model that loads as it is
    out = tmp_path / "downloaded"
    for path, data in files.items():
        (out / path).parent.mkdir(parents=True, exist_ok=True)
        (out / path).write_bytes(data)
    model = AutoModelForSequenceClassification.from_pretrained(out)
    assert model.config.num_labels == 5
