"""The chaos script's throwaway project (the toy recipe, its train.py, real BANKING77 rows) and the hooks that make
the harness SIGKILL itself at an exact point (scripts/chaos.py runs `_harness` with them).
"""

from __future__ import annotations

import csv
import os
import random
import signal
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
BANKING77 = Path(os.environ.get("HF_AUTORESEARCH_BANKING77", ROOT.parent / "shared" / "data" / "banking77"))

TRAIN_PY = '''"""Chaos train.py: the toy task's model is a threshold, saved after "training" for a moment.

An orphan (its harness was killed) trains on until its deadline, as a real training would: a harness that does not
clean up after a kill leaves it running long enough to be seen.
"""

import json
import os
import time
from pathlib import Path

THRESHOLD = 10  # characters above which a text is long; search: int(5, 80)
SMOOTHING = 0.5  # not used by the toy model, a second knob so the search never runs dry; search: float(0.0, 1.0)
TRAIN_SECONDS = 2.0  # how long "training" lasts


def harness_alive():
    """Whether the launcher's parent is still the harness (once it is killed, init or a subreaper adopts it)."""
    try:
        stat = Path(f"/proc/{os.getppid()}/stat").read_text()
        cmdline = Path(f"/proc/{stat[stat.rfind(')') + 2 :].split()[1]}/cmdline").read_bytes()
    except OSError:
        return False
    return any(name in cmdline for name in (b"hf-autoresearch", b"hf_autoresearch", b"chaos.py"))


def main():
    rows = [json.loads(line) for line in Path(os.environ["AUTORESEARCH_DATA_DIR"], "train.jsonl").open()]
    deadline = float(os.environ.get("AUTORESEARCH_DEADLINE", time.time() + 60))
    time.sleep(max(0.0, min(TRAIN_SECONDS, deadline - time.time())))
    while not harness_alive() and time.time() < deadline:
        time.sleep(0.5)
    out = Path(os.environ.get("AUTORESEARCH_OUTPUT_DIR", "output"))
    out.mkdir(parents=True, exist_ok=True)
    (out / "config.json").write_text(json.dumps({"threshold": THRESHOLD}))
    (out / "summary.json").write_text(json.dumps({"training_seconds": TRAIN_SECONDS, "num_train_rows": len(rows)}))
    print("---\\nthreshold:", THRESHOLD)


if __name__ == "__main__":
    main()
'''

HOOKS = {  # hook point -> the phase it stands for
    "git-worktree": "git",
    "git-commit": "git",
    "agent-edit": "agent",
    "ledger-before": "ledger",
    "ledger-torn": "ledger",
    "ledger-after": "ledger",
    "hub-commit": "push",
    "hub-tag": "push",
}


# --- the hooks, inside the harness process -------------------------------------------------------------
def run_hooked_harness(point: str, occurrence: int, argv: list[str]) -> int:
    """`hf_autoresearch.cli.main(argv)` that SIGKILLs itself the `occurrence`-th time it reaches `point`."""
    count = 0

    def reached(before_kill=None) -> bool:
        nonlocal count
        count += 1
        if count != occurrence:
            return False
        if before_kill is not None:
            before_kill()
        print(f"[chaos] SIGKILL at {point} ({occurrence})", flush=True)
        os.kill(os.getpid(), signal.SIGKILL)
        return True

    def after(owner, name):
        original = getattr(owner, name)

        def wrapper(*args, **kwargs):
            out = original(*args, **kwargs)
            reached()
            return out

        setattr(owner, name, wrapper)

    if point == "git-worktree":
        from hf_autoresearch import workspace

        original_git = workspace.git

        def git(cwd, *args, **kwargs):
            out = original_git(cwd, *args, **kwargs)
            if args[:2] == ("worktree", "add"):
                reached()
            return out

        workspace.git = git
    elif point == "git-commit":
        from hf_autoresearch.workspace import Workspace

        after(Workspace, "commit")
    elif point == "agent-edit":
        from hf_autoresearch.agents.optuna_agent import OptunaAgent

        after(OptunaAgent, "propose")
    elif point.startswith("ledger-"):
        from hf_autoresearch.ledger import Ledger

        original_append = Ledger.append

        def append(self, record):
            if point == "ledger-before":
                reached()
            elif point == "ledger-torn":

                def torn_write():  # half a line, as a write cut by a crash leaves it
                    line = (record.to_json() + "\n").encode()
                    with self.jsonl.open("ab") as f:
                        f.write(line[: len(line) // 2])
                        f.flush()
                        os.fsync(f.fileno())

                reached(torn_write)
            original_append(self, record)
            if point == "ledger-after":
                reached()

        Ledger.append = append
    elif point in ("hub-commit", "hub-tag"):
        from huggingface_hub import HfApi

        after(HfApi, "create_commit" if point == "hub-commit" else "create_tag")
    else:
        raise SystemExit(f"unknown hook point {point!r}")
    from hf_autoresearch.cli import main

    return main(argv)


# --- the project -----------------------------------------------------------------------------------------
def make_project(work: Path, rows: int, budget: int) -> tuple[Path, Path]:
    """A git project with the toy recipe and `rows` real rows per split; (recipe folder, repository)."""
    data = work / "data"
    data.mkdir(parents=True)
    for split in ("train", "test"):
        with (BANKING77 / f"{split}.csv").open() as f:
            found = list(csv.DictReader(f))
        random.Random(split).shuffle(found)
        with (data / f"{split}.csv").open("w", newline="") as f:
            writer = csv.DictWriter(f, fieldnames=["text", "label"])
            writer.writeheader()
            writer.writerows({"text": r["text"], "label": r["label"]} for r in found[:rows])
    repo = work / "project"
    recipe = repo / "recipes" / "length"
    recipe.mkdir(parents=True)
    (recipe / "train.py").write_text(TRAIN_PY)
    (recipe / "program.md").write_text("Find the length threshold.\n")
    (recipe / "recipe.toml").write_text(
        f'name = "length"\ntask = "toy_task:LengthTask"\n[model]\nname = "none"\n[data]\nsource = "{data}"\n'
        f"[budget]\nseconds = {budget}\ngrace_seconds = {budget}\n"
    )
    ident = ["-c", "user.name=chaos", "-c", "user.email=chaos@localhost"]
    for args in (["init", "-q", "-b", "main"], [*ident, "add", "-A"], [*ident, "commit", "-q", "-m", "recipe"]):
        subprocess.run(["git", *args], cwd=repo, check=True, capture_output=True)
    return recipe, repo
