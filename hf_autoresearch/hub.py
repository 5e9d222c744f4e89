"""Kept experiments as Hub model revisions tied to their git commits.

Each keep is one Hub commit on branch `autoresearch/<tag>` (message: the experiment, its score, the git commit of
train.py) and a tag `<tag>-exp-NNNN` on it. The revision holds the model folder as train.py saved it (weights or
adapter, tokenizer, summary.json), the train.py of that git commit, `autoresearch.json` and a model card.
`<run>/hub.jsonl` maps each experiment and git commit to its Hub commit: ledger.jsonl stays append-only, written
once an experiment ends, while a push may finish (or fail and be redone) later.
"""

from __future__ import annotations

import json
import queue
import re
import threading
import time
from pathlib import Path

from hf_autoresearch.errors import UserError
from hf_autoresearch.ledger import ExperimentRecord
from hf_autoresearch.runinfo import RunInfo, larger_baseline, noise_floor, short

HUB_FILE = "hub.jsonl"
SKIP_FILES = ("training_args.bin",)  # a pickle of Trainer arguments: no use to a user, flagged by the Hub
KEEP_ON_HUB = (".gitattributes",)  # never deleted when a revision replaces the files of the previous one


class HubError(UserError):
    """Publishing cannot start: no token, no permission, a bad repo id; the message says what to do."""


def require_token(token: str | None = None) -> str:
    from huggingface_hub import get_token

    token = token or get_token()
    if not token:
        raise HubError(
            "--push-to-hub needs a Hugging Face token with write access: run `hf auth login` or set HF_TOKEN "
            "(or add --dry-run to see what would be pushed)"
        )
    return token


def check_repo_id(repo_id: str) -> str:
    if not re.fullmatch(r"[\w.-]+/[\w.-]+", repo_id or ""):
        raise HubError(f"--push-to-hub/--repo takes OWNER/NAME, e.g. my-user/intent-minilm; got {repo_id!r}")
    return repo_id


def hub_tag(tag: str, number: int) -> str:
    return f"{tag}-exp-{number:04d}"


def pushed(folder: Path, repo_id: str | None = None) -> dict[int, dict]:
    """Experiments already on the Hub, by number (the branch pushes; promotions to main are separate lines)."""
    path = Path(folder) / HUB_FILE
    done: dict[int, dict] = {}
    if path.is_file():
        for line in path.read_text().splitlines():
            try:
                entry = json.loads(line)
            except json.JSONDecodeError:
                continue
            if (repo_id is None or entry.get("repo_id") == repo_id) and not entry.get("promoted"):
                done[entry["number"]] = entry
    return done


def _hub_id(value: str) -> str | None:
    """`value` if it names a Hub repo (not a local folder), for card metadata the Hub checks."""
    if not value or Path(value).expanduser().exists():
        return None
    return value if re.fullmatch(r"[\w.-]+/[\w.-]+", value) else None


def _model_kind(model_dir: Path) -> dict:
    """What the saved model is: architecture, pipeline, and the base when it is a PEFT adapter."""
    kind = {"adapter": None, "architecture": "", "pipeline": None, "auto_class": "AutoModel"}
    adapter = model_dir / "adapter_config.json"
    if adapter.is_file():
        data = json.loads(adapter.read_text())
        kind["adapter"] = data.get("base_model_name_or_path") or "?"
        task = data.get("task_type") or ""
        kind["pipeline"] = "text-classification" if task == "SEQ_CLS" else "text-generation"
        kind["auto_class"] = (
            "AutoPeftModelForSequenceClassification" if task == "SEQ_CLS" else "AutoPeftModelForCausalLM"
        )
        return kind
    config = model_dir / "config.json"
    if config.is_file():
        arch = (json.loads(config.read_text()).get("architectures") or [""])[0]
        kind["architecture"] = arch
        for suffix, pipeline, auto in (
            ("ForSequenceClassification", "text-classification", "AutoModelForSequenceClassification"),
            ("ForCausalLM", "text-generation", "AutoModelForCausalLM"),
            ("ForConditionalGeneration", "text-generation", "AutoModelForCausalLM"),
        ):
            if arch.endswith(suffix):
                kind["pipeline"], kind["auto_class"] = pipeline, auto
    return kind


def _fmt(value: float | None) -> str:
    return "–" if value is None else f"{value:.4f}"


def model_card(info: RunInfo, record: ExperimentRecord, repo_id: str, on_hub: dict[int, dict] | None = None):
    """The card of one revision: metadata with eval results, then what it is, how it scores, how it was made."""
    from huggingface_hub import EvalResult, ModelCard, ModelCardData

    on_hub = on_hub or {}
    config = info.config
    model_dir = info.folder / "models" / record.experiment
    kind = _model_kind(model_dir)
    data_id = _hub_id(config.get("data", ""))
    data_name = data_id or Path(config.get("data", "data")).name
    base_model = _hub_id(kind["adapter"] or config.get("model", ""))
    task_type = kind["pipeline"] or ("text-classification" if "classif" in config.get("recipe_rel", "") else "other")
    results = []
    for split in ("selection", "holdout"):
        for name, value in sorted((record.scores.get(split) or {}).items()):
            if isinstance(value, int | float) and not isinstance(value, bool):
                results.append(
                    EvalResult(
                        task_type=task_type,
                        dataset_type=data_id or data_name,
                        dataset_name=f"{data_name} ({split} split)",
                        dataset_split=split,
                        metric_type=name,
                        metric_value=round(float(value), 6),
                        metric_name=f"{name} ({split})",
                    )
                )
    card_data = ModelCardData(
        model_name=repo_id.split("/")[-1],
        base_model=base_model,
        datasets=[data_id] if data_id else None,
        metrics=sorted({r.metric_type for r in results}) or None,
        eval_results=results or None,
        library_name="peft" if kind["adapter"] else "transformers",
        pipeline_tag=kind["pipeline"],
        tags=["hf-autoresearch", info.recipe_name, f"autoresearch-run-{info.tag}"],
    )
    body = _card_body(info, record, repo_id, on_hub, kind)
    return ModelCard(f"---\n{card_data.to_yaml()}\n---\n\n{body}")


def _card_body(info: RunInfo, record: ExperimentRecord, repo_id: str, on_hub: dict[int, dict], kind: dict) -> str:
    config, metric = info.config, info.metric
    base = info.baseline
    larger = larger_baseline(info)
    noise = noise_floor(info)
    revision = hub_tag(info.tag, record.number)
    lines = [
        f"# {repo_id.split('/')[-1]} · {record.experiment} of run `{info.tag}`",
        "",
        f"Made by hf-autoresearch on the recipe `{info.recipe_name}`: an agent edited "
        "`train.py`, the edit trained under a fixed budget, a frozen evaluation scored it on the selection split, "
        "and the edit was kept because it beat the best before it. The holdout split was never used to decide.",
        "",
        f"- **experiment**: {record.experiment}: {record.description}",
        f"- **git commit of train.py**: `{record.commit}` (branch `{config.get('branch', '')}`, file "
        f"`{info.train_py_rel}`; the same file is in this revision as `train.py`)",
        f"- **base model**: `{kind['adapter'] or config.get('model', '')}`"
        + (" (this revision is a PEFT adapter on it)" if kind["adapter"] else ""),
        f"- **data**: `{config.get('data', '')}`",
        f"- **budget**: {config.get('budget', 0):.0f} s of training; trained {record.train_seconds:.0f} s, "
        f"seed {record.seed}",
        "",
        "## Results",
        "",
        f"`{metric}` ({info.direction}); selection decides, holdout is reported only.",
        "",
        "| | selection | holdout |",
        "|---|---:|---:|",
        f"| **this revision ({record.experiment})** | **{_fmt(record.selection)}** | **{_fmt(record.holdout)}** |",
    ]
    if base is not None and base.number != record.number:
        lines.append(f"| baseline (exp-0000, the recipe as written) | {_fmt(base.selection)} | {_fmt(base.holdout)} |")
    if larger:
        lines.append(
            f"| larger baseline `{larger['model']}` | {_fmt(larger['selection'])} | {_fmt(larger['holdout'])} |"
        )
    if noise:
        lines += [
            "",
            f"**Noise floor**: the baseline retrained with other seeds scores {_fmt(noise['mean'])} ± "
            f"{noise['std']:.4f} (std"
            + (f", {noise['repeats']} runs" if noise.get("repeats") else "")
            + ")"
            + (f"; a keep had to gain more than {noise['threshold']:.4f}" if noise.get("threshold") else "")
            + ".",
        ]
    lineage = info.lineage(record.number)
    lines += ["", "## Lineage of keeps", "", "| experiment | git commit | selection | holdout | Hub revision | what |"]
    lines.append("|---|---|---:|---:|---|---|")
    for r in lineage:
        rev = f"`{hub_tag(info.tag, r.number)}`" if r.number in on_hub or r.number == record.number else "–"
        lines.append(
            f"| {r.experiment} | `{r.commit[:12]}` | {_fmt(r.selection)} | {_fmt(r.holdout)} | {rev} | "
            f"{short(r.description, 80).replace('|', '/')} |"
        )
    diff = info.diff_from_baseline(record)
    lines += ["", "## train.py against the baseline", ""]
    lines += ["```diff", diff.rstrip(), "```"] if diff else ["This is the baseline: `train.py` as the recipe has it."]
    lines += ["", "## How to load it", "", "```python"]
    if kind["adapter"]:
        lines += [
            f"from peft import {kind['auto_class']}",
            "",
            f'model = {kind["auto_class"]}.from_pretrained("{repo_id}", revision="{revision}")',
        ]
    else:
        lines += [
            f"from transformers import {kind['auto_class']}, AutoTokenizer",
            "",
            f'model = {kind["auto_class"]}.from_pretrained("{repo_id}", revision="{revision}")',
            f'tokenizer = AutoTokenizer.from_pretrained("{repo_id}", revision="{revision}")',
        ]
    lines += [
        "```",
        "",
        f"Every kept experiment of this run is a tag `{info.tag}-exp-NNNN` on branch `autoresearch/{info.tag}`; "
        "`train.py` in each revision is the exact script that produced it (run it with `accelerate launch train.py`; "
        "it reads its data and output folders from `AUTORESEARCH_*` variables, see `autoresearch.json`).",
        "",
    ]
    return "\n".join(lines)


def revision_files(info: RunInfo, record: ExperimentRecord, repo_id: str, on_hub: dict[int, dict]) -> dict:
    """path in repo -> local Path or bytes: everything one revision holds."""
    model_dir = info.folder / "models" / record.experiment
    if not (model_dir.is_dir() and any(model_dir.iterdir())):
        raise HubError(f"{record.experiment} has no model folder at {model_dir}; only kept experiments keep one")
    files: dict[str, Path | bytes] = {
        p.relative_to(model_dir).as_posix(): p
        for p in sorted(model_dir.rglob("*"))
        if p.is_file() and p.name not in SKIP_FILES
    }
    if "summary.json" not in files:
        files["summary.json"] = json.dumps(record.summary, indent=2).encode()
    files["train.py"] = (info.train_py_at(record.commit) + "\n").encode()
    meta = {
        "run": info.tag,
        "recipe": info.config.get("recipe_rel"),
        "experiment": record.experiment,
        "description": record.description,
        "git_commit": record.commit,
        "git_parent": record.parent,
        "git_branch": info.config.get("branch"),
        "metric": info.metric,
        "direction": info.direction,
        "selection": record.selection,
        "holdout": record.holdout,
        "scores": record.scores,
        "decision": record.decision,
        "seed": record.seed,
        "budget_seconds": info.config.get("budget"),
        "train_seconds": record.train_seconds,
        "base_model": info.config.get("model"),
        "data": info.config.get("data"),
    }
    files["autoresearch.json"] = json.dumps(meta, indent=2).encode()
    files["README.md"] = str(model_card(info, record, repo_id, on_hub)).encode()
    return files


def commit_message(info: RunInfo, record: ExperimentRecord) -> str:
    return (
        f"{record.experiment}: {short(record.description, 80)} | {info.metric} {_fmt(record.selection)} (selection) "
        f"| train.py @ {record.commit[:12]}"
    )


class HubPublisher:
    """Pushes kept experiments of one run to one Hub repo, in order, from a background thread.

    `on_record` is the loop callback: a keep is queued and the loop goes on. A push that fails is retried, then
    reported; the local model folder is never touched, and `hf-autoresearch push` publishes what is missing.
    """

    def __init__(
        self,
        folder: Path,
        repo_id: str,
        *,
        private: bool = True,
        promote: bool = False,
        dry_run: bool = False,
        endpoint: str | None = None,
        token: str | None = None,
        retries: int = 3,
        retry_wait: float = 5.0,
        log=print,
    ):
        self.folder = Path(folder)
        self.repo_id = check_repo_id(repo_id)
        self.private, self.promote, self.dry_run = private, promote, dry_run
        self.endpoint, self.token = endpoint, token
        self.retries, self.retry_wait = max(1, retries), retry_wait
        self.log = log
        self.failures: dict[int, str] = {}
        self._queue: queue.Queue = queue.Queue()
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()
        self._api = None

    @property
    def info(self) -> RunInfo:
        return RunInfo.load(self.folder)  # read afresh: the ledger grows while pushes run

    @property
    def branch(self) -> str:
        return f"autoresearch/{json.loads((self.folder / 'run.json').read_text())['tag']}"

    @property
    def api(self):
        if self._api is None:
            from huggingface_hub import HfApi

            self._api = HfApi(endpoint=self.endpoint, token=self.token)
        return self._api

    # --- before the run ------------------------------------------------------------------------------
    def prepare(self) -> None:
        """Token, repo and branch, checked before any training so a missing permission fails in seconds."""
        visibility = "private" if self.private else "public"
        if self.dry_run:
            self.log(
                f"dry run: would create the {visibility} repo {self.repo_id} (if missing) and branch {self.branch}"
            )
            return
        self.token = require_token(self.token)
        from huggingface_hub.errors import HfHubHTTPError

        try:
            self.api.create_repo(self.repo_id, private=self.private, exist_ok=True)
            self.api.create_branch(self.repo_id, branch=self.branch, exist_ok=True)
        except HfHubHTTPError as err:
            raise HubError(
                f"cannot create {self.repo_id} or its branch {self.branch} on the Hub: {str(err).splitlines()[0]}; "
                "check that the token has write access to that namespace"
            ) from err
        self.log(f"pushing keeps to {self.repo_id} on branch {self.branch} ({visibility})")

    # --- one push ------------------------------------------------------------------------------------
    def push(self, record: ExperimentRecord) -> dict | None:
        """Publish one kept experiment now, retrying; its hub.jsonl line, or None (dry run or failure)."""
        info = self.info
        files = revision_files(info, record, self.repo_id, pushed(self.folder, self.repo_id))
        message = commit_message(info, record)
        if self.dry_run:
            return self._show(info, record, files, message)
        error = ""
        for attempt in range(1, self.retries + 1):
            try:
                entry = self._upload(info, record, files, message)
                self.failures.pop(record.number, None)
                return entry
            except Exception as err:  # network, HTTP, server: all worth a retry; the local model stays put
                error = f"{type(err).__name__}: {str(err).splitlines()[0] if str(err) else ''}"
                if attempt < self.retries:
                    self.log(f"push of {record.experiment} failed ({error}); retry {attempt}/{self.retries - 1}")
                    time.sleep(self.retry_wait * attempt)
        self.failures[record.number] = error
        self.log(
            f"push of {record.experiment} to {self.repo_id} failed after {self.retries} tries: {error}. The model "
            f"is safe in {self.folder / 'models' / record.experiment}; `hf-autoresearch push {info.tag} --repo "
            f"{self.repo_id}` publishes what is missing"
        )
        return None

    def _upload(self, info: RunInfo, record: ExperimentRecord, files: dict, message: str, revision: str = "") -> dict:
        from huggingface_hub import CommitOperationAdd, CommitOperationDelete

        revision = revision or self.branch
        stale = set(self.api.list_repo_files(self.repo_id, revision=revision)) - set(files) - set(KEEP_ON_HUB)
        operations = [CommitOperationDelete(path_in_repo=p) for p in sorted(stale)]
        operations += [CommitOperationAdd(path_in_repo=p, path_or_fileobj=src) for p, src in files.items()]
        description = (
            f"run {info.tag}, {record.experiment}: {record.description}\n\n"
            f"{info.metric}: selection {_fmt(record.selection)}, holdout {_fmt(record.holdout)}\n"
            f"git commit: {record.commit} ({info.train_py_rel})"
        )
        commit = self.api.create_commit(
            self.repo_id, operations, commit_message=message, commit_description=description, revision=revision
        )
        promoted = revision != self.branch
        tag = hub_tag(info.tag, record.number)
        if not promoted:
            self.api.create_tag(self.repo_id, tag=tag, revision=commit.oid, tag_message=message, exist_ok=True)
        entry = {
            "number": record.number,
            "experiment": record.experiment,
            "git_commit": record.commit,
            "repo_id": self.repo_id,
            "revision": revision,
            "hub_commit": commit.oid,
            "tag": "" if promoted else tag,
            "url": commit.commit_url,
            "promoted": promoted,
            "pushed_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        }
        with self._lock, (self.folder / HUB_FILE).open("a") as f:
            f.write(json.dumps(entry) + "\n")
        self.log(
            f"pushed {record.experiment} to {self.repo_id}@{revision} as {commit.oid[:12]}"
            + (f" ({tag})" if not promoted else "")
        )
        return entry

    def _show(self, info: RunInfo, record: ExperimentRecord, files: dict, message: str) -> None:
        """--dry-run: say what would be pushed and leave the card on disk to read."""
        out = self.folder / "hub-dry-run" / record.experiment
        out.mkdir(parents=True, exist_ok=True)
        (out / "README.md").write_bytes(files["README.md"])
        size = sum(len(v) if isinstance(v, bytes) else v.stat().st_size for v in files.values())
        self.log(
            f"dry run: would push {record.experiment} to {self.repo_id}@{self.branch} and tag it "
            f"{hub_tag(info.tag, record.number)}: {len(files)} files, {size / 2**20:.1f} MiB "
            f"({', '.join(sorted(files))})\n  message: {message}\n  card: {out / 'README.md'}"
        )
        return None

    def promote_best(self) -> dict | None:
        """Put the best experiment on main (one more commit there); the branch and tags stay as they are."""
        info = self.info
        best = info.best
        if best is None:
            return None
        files = revision_files(info, best, self.repo_id, pushed(self.folder, self.repo_id))
        message = f"Promote {commit_message(info, best)}"
        if self.dry_run:
            self.log(f"dry run: would put {best.experiment} on {self.repo_id}@main: {message}")
            return None
        return self._upload(info, best, files, message, revision="main")

    # --- in the background during a run ------------------------------------------------------------
    def on_record(self, run, record: ExperimentRecord) -> None:
        if record.status == "keep":
            self.submit(record)

    def submit(self, record: ExperimentRecord) -> None:
        if self._thread is None:
            self._thread = threading.Thread(target=self._work, name="hub-push", daemon=True)
            self._thread.start()
        self._queue.put(record)

    def _work(self) -> None:
        while True:
            record = self._queue.get()
            try:
                if record is None:
                    return
                self.push(record)
            except Exception as err:  # a card that cannot be built must not kill the thread
                self.failures[record.number] = f"{type(err).__name__}: {err}"
                self.log(f"push of {record.experiment} failed: {err}")
            finally:
                self._queue.task_done()

    def close(self, promote: bool | None = None) -> dict[int, str]:
        """Wait for the queued pushes, promote if asked; the failures by experiment number."""
        if self._thread is not None:
            if not self._queue.empty():
                self.log(f"waiting for {self._queue.qsize()} Hub push(es) to finish")
            self._queue.put(None)
            self._thread.join()
            self._thread = None
        if self.promote if promote is None else promote:
            best = self.info.best
            if best is not None and best.number in self.failures:
                self.log(f"not promoting {best.experiment}: its push failed")
            else:
                try:
                    self.promote_best()
                except Exception as err:
                    self.failures[-1] = f"promotion to main failed: {err}"
                    self.log(self.failures[-1])
        return self.failures

    def push_missing(self) -> list[dict]:
        """Publish every kept experiment of the run that is not on the Hub yet (the `push` command)."""
        done = pushed(self.folder, self.repo_id)
        entries = []
        for record in self.info.kept:
            if record.number in done:
                continue
            entry = self.push(record)
            if entry:
                entries.append(entry)
        return entries
