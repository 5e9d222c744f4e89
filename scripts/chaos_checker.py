"""The chaos script's invariants (`Checker`) and the processes it looks for (scripts/chaos.py runs them).

A process belongs to a chaos run when its environment carries MARK=<the run's mark>; the checker reads the ledger,
the branch, the model folders and the Hub stand-in as written, with no harness code, so a bug there cannot hide.
"""

from __future__ import annotations

import csv
import json
import re
import subprocess
import threading
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

MARK = "HF_AUTORESEARCH_CHAOS"  # in the harness's environment, so every process it starts can be found
REPO_ID = "user/chaos"


# --- processes ------------------------------------------------------------------------------------------
def proc_table() -> dict[int, tuple[int, str, int]]:
    """pid -> (parent pid, command line, start time in clock ticks after boot) of every live process we can read."""
    table = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
            cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace").strip()
        except OSError:
            continue
        fields = stat[stat.rfind(")") + 2 :].split()
        if fields[0] == "Z":  # a zombie holds nothing; its parent has yet to reap it
            continue
        table[int(entry.name)] = (int(fields[1]), cmdline, int(fields[19]))
    return table


def descendants(pid: int, table: dict[int, tuple[int, str]]) -> set[int]:
    children: dict[int, list[int]] = {}
    for child, (parent, *_) in table.items():
        children.setdefault(parent, []).append(child)
    found, stack = set(), [pid]
    while stack:
        for child in children.get(stack.pop(), []):
            if child not in found:
                found.add(child)
                stack.append(child)
    return found


def marked(mark: str) -> dict[int, tuple[str, int]]:
    """Processes whose environment carries this chaos run's mark (the harness and everything it started):
    pid -> (command line, start time)."""
    needle = f"{MARK}={mark}".encode()
    found = {}
    for pid, (_, cmdline, start) in proc_table().items():
        try:
            if needle in Path(f"/proc/{pid}/environ").read_bytes().split(b"\0"):
                found[pid] = (cmdline, start)
        except OSError:
            continue
    return found


def kind_of(cmdline: str) -> str:
    if "accelerate.commands.launch" in cmdline or "train.py" in cmdline:
        return "training"
    if "hf_autoresearch.evaluation" in cmdline:
        return "evaluation"
    if "hf_autoresearch.executors.reaper" in cmdline:
        return "reaper"
    if cmdline.split(" ")[0].endswith("git"):
        return "git"
    return "harness" if "hf-autoresearch" in cmdline or "chaos.py" in cmdline else "other"


def git_out(repo: Path, *args: str) -> str | None:
    done = subprocess.run(["git", *args], cwd=repo, capture_output=True, text=True)
    return done.stdout.strip() if done.returncode == 0 else None


def hub_lines(folder: Path) -> list[dict]:
    path = folder / "hub.jsonl"
    found = []
    for line in path.read_text().splitlines() if path.is_file() else []:
        try:
            found.append(json.loads(line))
        except ValueError:  # torn by a kill
            continue
    return found


# --- the invariants ---------------------------------------------------------------------------------------
@dataclass
class Checker:
    """What must hold of the run folder, the git branch and the Hub, after every kill and resume and at the end.

    lost: an experiment number that was in the ledger and is gone, or a keep whose commit left the branch or whose
    model folder disappeared. duplicated: a number twice in the ledger, or one keep as two Hub commits.
    orphans: a training or evaluation process of a killed session still alive after a resumed session started.
    """

    folder: Path
    repo: Path
    hub: object | None = None
    seen: set[int] = field(default_factory=set)
    kept: dict[int, str] = field(default_factory=dict)
    lost: set[str] = field(default_factory=set)
    duplicated: set[str] = field(default_factory=set)
    orphans: dict[int, str] = field(default_factory=dict)
    problems: list[str] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)  # a watcher thread checks during a session

    @property
    def branch(self) -> str:
        return f"autoresearch/{self.folder.name}"

    def problem(self, text: str) -> None:
        if text not in self.problems:
            self.problems.append(text)

    def ledger(self) -> tuple[list[dict], bool]:
        """The ledger's records as written (no harness code: a bug there must not hide itself) and whether its
        last line is torn."""
        path = self.folder / "ledger.jsonl"
        if not path.is_file():
            return [], False
        data = path.read_bytes()
        lines = data.split(b"\n")
        records = []
        for i, raw in enumerate(lines):
            if not raw.strip():
                continue
            try:
                records.append(json.loads(raw))
            except ValueError:
                if i == len(lines) - 1:
                    return records, True
                self.problem(f"ledger.jsonl line {i + 1} is unreadable and not the last line")
        return records, False

    def check(self, when: str, strict: bool = False, tsv_may_lag: bool = True, staged_ok: bool | None = None) -> None:
        """`strict`: the run is finished (nothing may be half-done); else a kill may have left one step undone.
        `staged_ok`: a kept model may still be staged (default: unless strict; a resumed run installs it first)."""
        with self.lock:
            self._check(when, strict, tsv_may_lag, not strict if staged_ok is None else staged_ok)

    def _check(self, when: str, strict: bool, tsv_may_lag: bool, staged_ok: bool) -> None:
        records, torn = self.ledger()
        if torn and strict:
            self.problem(f"{when}: ledger.jsonl ends in a torn line")
        numbers = [r["number"] for r in records]
        for number, n in Counter(numbers).items():
            if n > 1:
                self.duplicated.add(f"exp-{number:04d} is {n} times in ledger.jsonl ({when})")
        unique = sorted(set(numbers))
        if unique != list(range(len(unique))):
            self.problem(f"{when}: experiment numbers are not contiguous from 0: {unique}")
        for number in self.seen - set(unique):
            self.lost.add(f"exp-{number:04d} left the ledger ({when})")
        self.seen |= set(unique)
        by_number = {r["number"]: r for r in records}
        for r in records:
            if r["status"] == "keep":
                self.kept.setdefault(r["number"], r["commit"])
        for number, commit in self.kept.items():
            r = by_number.get(number)
            if r is None:
                continue  # counted as a lost number above
            if r["status"] != "keep" or r["commit"] != commit:
                self.lost.add(f"exp-{number:04d} was a keep of {commit[:8]}, now {r['status']} {r['commit'][:8]}")
            if git_out(self.repo, "merge-base", "--is-ancestor", commit, f"refs/heads/{self.branch}") is None:
                self.lost.add(f"the commit {commit[:8]} of keep exp-{number:04d} is not on {self.branch} ({when})")
            self._check_model(number, when, staged_ok)
        self._check_models_folder(set(self.kept), when, staged_ok)
        self._check_head(records, when, strict)
        self._check_tsv(records, when, may_lag=tsv_may_lag and not strict)
        if self.hub is not None:
            self._check_hub(records, when, strict)

    def _check_model(self, number: int, when: str, staged_ok: bool) -> None:
        models = self.folder / "models"
        final, staged = models / f"exp-{number:04d}", models / f".exp-{number:04d}.staged"
        if (final / "config.json").is_file():
            return
        if staged.is_dir() and staged_ok:
            return  # a kill between the ledger append and the rename: the next session installs it
        self.lost.add(f"keep exp-{number:04d} has no model folder ({when})")

    def _check_models_folder(self, kept: set[int], when: str, staged_ok: bool) -> None:
        models = self.folder / "models"
        if not models.is_dir():
            return
        for entry in models.iterdir():
            m = re.fullmatch(r"\.?exp-(\d{4})(\.staged)?", entry.name)
            if m is None:
                continue
            if entry.name.startswith(".") and not staged_ok:
                self.problem(f"{when}: a staged model folder is left: {entry.name}")
            if not entry.name.startswith(".") and int(m.group(1)) not in kept:
                self.problem(f"{when}: models/{entry.name} belongs to no keep")
            nested = [p for p in entry.rglob("*") if p.is_dir() and re.match(r"\.?exp-\d{4}|output$", p.name)]
            if nested:
                self.problem(f"{when}: a model folder is nested inside {entry.name}: {nested[0].relative_to(models)}")

    def _check_head(self, records: list[dict], when: str, strict: bool) -> None:
        kept = [r for r in records if r["status"] == "keep"]
        head = git_out(self.repo, "rev-parse", "--verify", "-q", f"refs/heads/{self.branch}")
        if not kept:
            return
        last = kept[-1]["commit"]
        if head == last:
            return
        # between an edit's commit and its ledger row the branch holds the edit on top of the best
        parent = git_out(self.repo, "rev-parse", "--verify", "-q", f"{head}^") if head else None
        if strict or parent != last:
            self.problem(f"{when}: branch head {str(head)[:8]} is not the last keep's commit {last[:8]}")

    def _check_tsv(self, records: list[dict], when: str, may_lag: bool) -> None:
        path = self.folder / "results.tsv"
        if not records:
            return
        with path.open() as f:
            rows = [(r["experiment"], r["commit"], r["status"]) for r in csv.DictReader(f, delimiter="\t")]
        want = [
            (f"exp-{r['number']:04d}", r["commit"][:12], r["status"])
            for r in sorted(records, key=lambda r: r["number"])
        ]
        if rows == want or (may_lag and rows == want[:-1]):
            return
        self.problem(f"{when}: results.tsv disagrees with ledger.jsonl ({len(rows)} rows, {len(want)} records)")

    def _check_hub(self, records: list[dict], when: str, strict: bool) -> None:
        repo = self.hub.repos.get(REPO_ID)
        if repo is None or self.branch not in repo.branches:
            if strict and self.kept:
                self.lost.add(f"the Hub has no branch {self.branch}")
            return
        commits = Counter()
        for commit in repo.history(self.branch):
            m = re.match(r"exp-(\d{4}):", commit.message)
            if m:
                commits[int(m.group(1))] += 1
        for number, n in commits.items():
            if n > 1:
                self.duplicated.add(f"exp-{number:04d} is {n} commits on the Hub")
            if number not in self.kept:
                self.problem(f"{when}: exp-{number:04d} is on the Hub but is no keep")
        if not strict:
            return
        for number in self.kept:
            tag = repo.tags.get(f"{self.folder.name}-exp-{number:04d}")
            if commits[number] == 0:
                self.lost.add(f"keep exp-{number:04d} was never pushed")
            elif tag is None or not repo.commits[tag].message.startswith(f"exp-{number:04d}:"):
                self.problem(f"keep exp-{number:04d} has no Hub tag on its commit")
        pushed = Counter(e["number"] for e in hub_lines(self.folder) if not e.get("promoted"))
        for number, n in pushed.items():
            if n > 1:
                self.duplicated.add(f"exp-{number:04d} is {n} lines in hub.jsonl")

    def check_orphans(self, mark: str, since: int | None, when: str) -> None:
        """Trainings and evaluations started before `since` (the live session's start time; None: any) are left
        over from a killed session."""
        with self.lock:
            for pid, (cmdline, start) in marked(mark).items():
                if (since is not None and start >= since) or kind_of(cmdline) in ("harness", "git"):
                    continue
                if pid not in self.orphans:
                    self.orphans[pid] = f"{kind_of(cmdline)} pid {pid} ({when}): {cmdline[:150]}"
