"""Fault injection: SIGKILL the harness at seeded random moments, resume it, again and again, and check that nothing
is lost, nothing is counted twice and no training or evaluation process is left behind.

    python scripts/chaos.py --kills 50 --push          (--quick: the CI test's ten kills, one of each kind)

It makes a throwaway git project with the toy task of tests/toy (a "model" that is one threshold, so a trial takes
seconds: mostly `accelerate launch` start-up), 200 real BANKING77 rows, and drives the real CLI as a subprocess:
`hf-autoresearch run RECIPE --agent optuna --baseline-repeats 2 --confirm ...`, then `run --resume` after each kill.
With --push, keeps go to a local Hub stand-in (tests/hub_server.py) that lives in this process, across the kills.
The search finds the toy's best in a few experiments, so the kills are spread over several runs (--kills-per-run,
each of --max-experiments experiments, raised when a run finishes before its kills are done): each run has its
baseline and early keeps to kill.

Each session is killed (SIGKILL to the harness process only, never its group: the harness must clean up after
itself) by one of three plans, drawn from --seed:
  timed   after a random delay;
  phase   a random delay after the n-th time the run prints a phase line (asking the agent, training, confirming,
          evaluating on holdout, an experiment's result, a finished Hub push);
  hook    the harness kills itself at an exact point it would otherwise hit only by luck (after the git commit of an
          edit, after the agent's edit, before / half-way through / after the ledger append, after the Hub commit
          or tag, inside the start's `git worktree add`): it runs as `hf_autoresearch.cli.main` with a wrapper
          that calls os.kill(os.getpid(), SIGKILL) there.
After every kill and every resume the invariants are checked (see `Checker`); at the end the run must hold exactly
--max-experiments experiments after the baseline. The last line is the figure:
`kills: N, resumes: N, lost: 0, duplicated: 0, orphans: 0`; the exit status is 0 only if all three are 0 and no
other invariant failed.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from chaos_checker import MARK, REPO_ID, Checker, descendants, hub_lines, kind_of, marked, proc_table
from chaos_project import HOOKS, ROOT, make_project, run_hooked_harness

TOY = ROOT / "tests" / "toy"
TAG = "chaos"

PHASE_LINES = {  # what the run prints when a phase starts (stdout of the harness)
    "agent": re.compile(r"exp-\d{4}: asking the"),
    "training": re.compile(r"exp-\d{4}: training"),
    "confirm": re.compile(r"\d+ confirmation runs$"),
    "holdout": re.compile(r"evaluating on holdout"),
    "record": re.compile(r"exp-\d{4}: (keep|discard|crash|timeout|invalid)\b"),
    "pushed": re.compile(r"^pushed exp-\d{4}"),
}
READY = re.compile(r"^run \S+: \S+ agent, .*branch ")


# --- sessions ---------------------------------------------------------------------------------------------
@dataclass
class Plan:
    kind: str  # timed / phase / hook / none
    delay: float = 0.0
    phase: str = ""  # a PHASE_LINES key, or a HOOKS key for kind hook
    occurrence: int = 1

    def __str__(self) -> str:
        if self.kind == "timed":
            return f"timed {self.delay:.1f}s"
        if self.kind == "phase":
            return f"{self.delay:.1f}s after {self.phase} #{self.occurrence}"
        return f"hook {self.phase} #{self.occurrence}" if self.kind == "hook" else "to the end"

    @property
    def label(self) -> str:
        """The plan without its numbers: timed, after <phase line>, hook <point>."""
        return {"phase": f"after {self.phase}", "hook": f"hook {self.phase}"}.get(self.kind, self.kind)


def quick_schedule(rng: random.Random, push: bool) -> list[Plan]:
    """Ten kills that walk through one short run (for CI): each phase once, few that throw work away."""
    return [
        Plan("hook", phase="git-worktree"),  # the start, between its worktree and its branch
        Plan("timed", delay=rng.uniform(0.5, 4.0)),  # start-up and resume
        Plan("phase", phase="training", delay=rng.uniform(0.0, 6.0)),  # the baseline's repeats
        Plan("hook", phase="ledger-after"),  # the baseline's row is written, its model still staged
        Plan("hook", phase="hub-commit") if push else Plan("phase", phase="agent", delay=rng.uniform(0.0, 1.0)),
        Plan("hook", phase="agent-edit"),  # train.py edited, nothing committed
        Plan("hook", phase="git-commit"),  # the edit committed on the branch, not trained
        Plan("phase", phase="training", delay=rng.uniform(0.0, 6.0)),
        Plan("phase", phase="training", delay=rng.uniform(15.0, 25.0)),  # the evaluation (or the confirmation)
        Plan("hook", phase="ledger-torn"),  # half a ledger line
    ]


def draw_plan(rng: random.Random, push: bool, started: bool, pushing: bool = True) -> Plan:
    """A random plan; `started`: the run's worktree exists; `pushing`: a Hub push is likely in the next session
    (a keep not pushed yet, or a young run whose search still finds keeps)."""
    kind = rng.choices(["timed", "phase", "hook"], weights=[3, 4, 3])[0]
    if kind == "timed":
        return Plan("timed", delay=rng.uniform(0.3, 30.0))
    if kind == "phase":
        phases = ["agent", "training", "training", "confirm", "holdout", "record"] + (["pushed"] if pushing else [])
        phase = rng.choice(phases)
        return Plan(
            "phase", delay=rng.uniform(0, 15 if phase == "training" else 3), phase=phase, occurrence=rng.randint(1, 2)
        )
    hooks = ["git-commit", "agent-edit", "ledger-before", "ledger-torn", "ledger-after"]
    hooks += ["hub-commit", "hub-tag"] if push and pushing else []
    if not started:  # reachable only while the run's worktree is being made
        hooks.append("git-worktree")
    return Plan("hook", phase=rng.choice(hooks), occurrence=rng.randint(1, 2))


@dataclass
class Kill:
    session: int
    plan: str
    kind: str  # Plan.label
    phase: str
    seconds: float
    push_in_flight: bool


class Session:
    """One `hf-autoresearch run` process whose stdout is read line by line (kept in `log`)."""

    def __init__(self, index: int, argv: list[str], env: dict, log: Path):
        self.index, self.log, self.lines = index, log, []
        self.trained_at_line = -1  # the last line printed while a training process was seen
        self.started = time.monotonic()
        self.proc = subprocess.Popen(
            argv,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            text=True,
            start_new_session=True,  # a Ctrl-C of the chaos script must not reach the harness: we kill it ourselves
        )
        self.reader = threading.Thread(target=self._read, daemon=True)
        self.reader.start()

    def _read(self) -> None:
        with self.log.open("a") as out:
            out.write(f"=== session {self.index}\n")
            for line in self.proc.stdout:
                self.lines.append(line.rstrip("\n"))
                out.write(f"{time.monotonic() - self.started:7.1f} {line}")
                out.flush()

    def count(self, pattern: re.Pattern) -> int:
        return sum(1 for line in list(self.lines) if pattern.search(line))

    def last_phase_line(self) -> tuple[str, int]:
        """The last phase line printed (a PHASE_LINES key, "" if none) and its index in `lines`."""
        lines = list(self.lines)
        for index in range(len(lines) - 1, -1, -1):
            for name, pattern in PHASE_LINES.items():
                if name != "pushed" and pattern.search(lines[index]):
                    return name, index
        return "", -1

    def children(self) -> set[str]:
        """The kinds of the harness's live descendants (training, evaluation, git); notes when training ran."""
        table = proc_table()
        kinds = {kind_of(table[pid][1]) for pid in descendants(self.proc.pid, table) if pid in table}
        if "training" in kinds:
            self.trained_at_line = len(self.lines) - 1
        return kinds

    def phase_now(self) -> str:
        """What the harness is doing right now: from its child processes and the last phase line it printed."""
        if not any(READY.search(line) for line in list(self.lines)):
            return "start"
        kinds = self.children()
        if "training" in kinds:
            return "training"
        if "git" in kinds:
            return "git"
        last, index = self.last_phase_line()
        if last in ("training", "confirm"):  # before its process starts, the harness prepares the training
            return "evaluation" if self.trained_at_line >= index else "training"
        return {"agent": "agent", "holdout": "evaluation", "": "start"}.get(last, "bookkeeping")

    def push_in_flight(self, pending_at_start: int | None) -> bool:
        """Whether a keep's Hub push has not finished yet (None: the run does not push)."""
        if pending_at_start is None:
            return False
        lines = list(self.lines)
        keeps = sum(1 for line in lines if re.search(r"exp-\d{4}: keep\b", line))
        pushed = sum(1 for line in lines if PHASE_LINES["pushed"].search(line))
        return pending_at_start + keeps > pushed

    def wait_plan(self, plan: Plan, timeout: float) -> bool:
        """Wait until the plan says kill (True) or the process ends (False)."""
        trigger = self.started + plan.delay if plan.kind == "timed" else None
        polled = 0.0
        while self.proc.poll() is None:
            now = time.monotonic()
            if now - self.started > timeout:
                return True
            if plan.kind == "phase" and trigger is None and self.count(PHASE_LINES[plan.phase]) >= plan.occurrence:
                trigger = now + plan.delay
            if trigger is not None and now >= trigger:
                return True
            if now - polled > 0.25:
                self.children()
                polled = now
            time.sleep(0.05)
        return False

    def kill(self) -> None:
        try:
            os.kill(self.proc.pid, signal.SIGKILL)  # the harness only: its children are its own business
        except ProcessLookupError:
            pass

    def finish(self) -> int:
        code = self.proc.wait()
        self.reader.join(timeout=10)
        return code


@dataclass
class RunResult:
    """What one run (one tag) went through."""

    tag: str
    kills: list[Kill] = field(default_factory=list)
    resumes: int = 0
    max_experiments: int = 0
    experiments: int = 0
    checker: Checker | None = None


@dataclass
class ChaosResult:
    runs: list[RunResult]
    stale_scratch: int
    seconds: float
    work: Path

    def _all(self, name: str) -> list[str]:
        return [f"{r.tag}: {item}" for r in self.runs for item in sorted(getattr(r.checker, name))]

    kills = property(lambda self: [k for r in self.runs for k in r.kills])
    resumes = property(lambda self: sum(r.resumes for r in self.runs))
    lost = property(lambda self: self._all("lost"))
    duplicated = property(lambda self: self._all("duplicated"))
    orphans = property(lambda self: [f"{r.tag}: {o}" for r in self.runs for o in r.checker.orphans.values()])
    problems = property(lambda self: [f"{r.tag}: {p}" for r in self.runs for p in r.checker.problems])

    @property
    def ok(self) -> bool:
        return not (self.lost or self.duplicated or self.orphans or self.problems)

    def figure(self) -> str:
        return (
            f"kills: {len(self.kills)}, resumes: {self.resumes}, lost: {len(self.lost)}, "
            f"duplicated: {len(self.duplicated)}, orphans: {len(self.orphans)}"
        )

    def phases(self) -> Counter:
        return Counter(k.phase for k in self.kills)

    def to_dict(self) -> dict:
        return {
            "figure": self.figure(),
            "runs": [
                {
                    "tag": r.tag,
                    "kills": [k.__dict__ for k in r.kills],
                    "resumes": r.resumes,
                    "experiments": r.experiments,
                    "max_experiments": r.max_experiments,
                }
                for r in self.runs
            ],
            **{name: getattr(self, name) for name in ("lost", "duplicated", "orphans", "problems")},
            "stale_scratch": self.stale_scratch,
            "seconds": self.seconds,
            "work": str(self.work),
        }


class Driver:
    """Starts, kills and resumes the harness on one throwaway project; one `campaign` per run tag."""

    def __init__(self, work: Path, seed: int, push: bool, rows: int, budget: int, orphan_wait: float, log):
        self.work, self.seed, self.push, self.orphan_wait, self.log = work, seed, push, orphan_wait, log
        self.rng = random.Random(seed)
        self.recipe, self.repo = make_project(work, rows, budget)
        self.run_dir, self.tmp = work / "runs", work / "tmp"
        self.tmp.mkdir()
        self.mark = uuid.uuid4().hex
        self.env = {k: v for k, v in os.environ.items() if not k.startswith(("AUTORESEARCH_", "HF_AUTORESEARCH_"))}
        self.env.update(
            PYTHONPATH=os.pathsep.join([str(ROOT), str(TOY), *filter(None, [os.environ.get("PYTHONPATH")])]),
            PYTHONUNBUFFERED="1",
            TMPDIR=str(self.tmp),  # the executor's scratch folders land here, where they can be counted
            **{MARK: self.mark},
        )
        self.hub = None
        if push:
            sys.path.insert(0, str(ROOT / "tests"))
            from hub_server import FakeHub

            self.hub = FakeHub().__enter__()
            self.env.update(HF_ENDPOINT=self.hub.endpoint, HF_TOKEN=self.hub.token)
            self.env.pop("HF_HUB_OFFLINE", None)
        cli = Path(sys.executable).with_name("hf-autoresearch")
        self.cli = [str(cli)] if cli.is_file() else [sys.executable, "-m", "hf_autoresearch.cli"]
        self.sessions = 0

    def close(self) -> None:
        for pid in marked(self.mark):  # whatever we started and is still there
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        if self.hub is not None:
            self.hub.__exit__(None, None, None)

    def argv(self, tag: str, max_experiments: int, plan: Plan) -> tuple[list[str], bool]:
        resuming = (self.run_dir / tag / "run.json").is_file()
        if resuming:
            args = ["run", "--resume", "--tag", tag, "--run-dir", str(self.run_dir)]
        else:
            args = ["run", str(self.recipe), "--tag", tag, "--agent", "optuna", "--baseline-repeats", "2", "--confirm"]
            args += ["--seed", str(self.seed), "--run-dir", str(self.run_dir)]
            args += ["--push-to-hub", REPO_ID] if self.push else []
        args += ["--max-experiments", str(max_experiments)]
        if plan.kind == "hook":
            return [
                sys.executable,
                str(Path(__file__).resolve()),
                "_harness",
                plan.phase,
                str(plan.occurrence),
                *args,
            ], resuming
        return [*self.cli, *args], resuming

    def campaign(
        self, tag: str, kills: int, max_experiments: int, schedule: list[Plan] | None, plan_timeout: float
    ) -> RunResult:
        """Kill run `tag` `kills` times, then let it finish and check it strictly."""
        folder = self.run_dir / tag
        checker = Checker(folder, self.repo, self.hub)
        result = RunResult(tag, max_experiments=max_experiments, checker=checker)
        while True:
            self.sessions += 1
            if len(result.kills) >= kills:
                plan = Plan("none")
            elif schedule is not None:
                plan = schedule[len(result.kills)]
            else:
                records, _ = checker.ledger()
                pushing = self.push and (_unpushed(folder) > 0 or len(records) <= 3)
                plan = draw_plan(self.rng, self.push, (folder / "worktree" / ".git").exists(), pushing)
            argv, resuming = self.argv(tag, result.max_experiments, plan)
            pending = _unpushed(folder) if self.push else None
            result.resumes += resuming
            session = Session(self.sessions, argv, self.env, self.work / "sessions.log")
            if resuming:
                _after_ready(session, checker, self.mark, self.orphan_wait)
            if plan.kind == "none":
                if session.wait_plan(Plan("timed", delay=float("inf")), plan_timeout * 5):
                    session.kill()
                    checker.problem(f"session {self.sessions} (the last) did not finish in {plan_timeout * 5:.0f} s")
                code = session.finish()
                _failed_pushes(session, checker)
                if code != 0:
                    checker.problem(f"the last session exited with {code}: {' | '.join(session.lines[-5:])}")
                break
            phase, in_flight = "", False
            if session.wait_plan(plan, plan_timeout):  # a hook or phase not reached in time: killed anyway
                phase, in_flight = session.phase_now(), session.push_in_flight(pending)
                session.kill()
            code = session.finish()
            seconds = time.monotonic() - session.started
            _failed_pushes(session, checker)
            if code == -signal.SIGKILL:
                if any(line.startswith("[chaos] SIGKILL") for line in session.lines):
                    phase = HOOKS[plan.phase]
                result.kills.append(Kill(self.sessions, str(plan), plan.label, phase, seconds, in_flight))
                self.log(
                    f"{tag} kill {len(result.kills):2d} (session {self.sessions}): {phase:<11} {plan}, {seconds:.1f} s"
                )
                time.sleep(1.0)  # what the kill left: the next session repairs it, but nothing may be lost already
                checker.check(f"after kill {len(result.kills)}")
            elif code == 0:
                self.log(
                    f"{tag} session {self.sessions} finished the run before its kill ({plan}); --max-experiments +2"
                )
                result.max_experiments += 2
            else:
                checker.problem(f"session {self.sessions} exited with {code}: {' | '.join(session.lines[-5:])}")
                break
        time.sleep(self.orphan_wait)
        checker.check_orphans(self.mark, None, "after the run")
        checker.check("the end", strict=True, tsv_may_lag=False)
        records, _ = checker.ledger()
        result.experiments = sum(1 for r in records if r["number"] > 0)
        if result.experiments != result.max_experiments:
            checker.problem(f"the run holds {result.experiments} experiments, not {result.max_experiments}")
        return result


def run_chaos(
    work: Path,
    kills: int = 50,
    max_experiments: int = 5,
    seed: int = 0,
    push: bool = False,
    rows: int = 200,
    budget: int = 60,
    kills_per_run: int = 10,
    orphan_wait: float = 3.0,
    plan_timeout: float = 90.0,
    schedule: list[Plan] | None = None,
    log=print,
) -> ChaosResult:
    """Kill runs `kills` times in all (by plans drawn from `seed`, or the plans of `schedule` in one run), each run
    `kills_per_run` times before it may finish: the toy's search finds its best in a few experiments, so fresh runs
    keep keeps (model folders, Hub pushes) coming."""
    started = time.monotonic()
    driver = Driver(work, seed, push, rows, budget, orphan_wait, log)
    runs = []
    try:
        if schedule is not None:
            runs.append(driver.campaign(TAG, len(schedule), max_experiments, schedule, plan_timeout))
        else:
            for i in range(0, kills, kills_per_run):
                tag = TAG if i == 0 else f"{TAG}-{i // kills_per_run + 1}"
                runs.append(driver.campaign(tag, min(kills_per_run, kills - i), max_experiments, None, plan_timeout))
    finally:
        driver.close()
    stale = len(list(driver.tmp.glob("hf-autoresearch-*")))
    return ChaosResult(runs, stale, time.monotonic() - started, work)


def _unpushed(folder: Path) -> int:
    """Keeps in the ledger that hub.jsonl lacks: a resumed session pushes them first."""
    try:
        records = [json.loads(line) for line in (folder / "ledger.jsonl").read_text().splitlines() if line.strip()]
    except (OSError, ValueError):
        return 0
    pushed = {e["number"] for e in hub_lines(folder)}
    return sum(1 for r in records if r.get("status") == "keep" and r["number"] not in pushed)


def _failed_pushes(session: Session, checker: Checker) -> None:
    """The local Hub never fails: a push that reports a failure is a harness bug (a model not in place...)."""
    for line in session.lines:
        if re.match(r"push of exp-\d{4}.* failed", line):
            checker.problem(f"session {session.index}: {line}")


def _after_ready(session: Session, checker: Checker, mark: str, orphan_wait: float) -> None:
    """In a resumed session: once it has reopened the run (results.tsv rewritten), check the folder; a few seconds
    later, look for processes a killed session left behind."""

    def watch():
        while session.proc.poll() is None and not any(READY.search(line) for line in list(session.lines)):
            time.sleep(0.05)
        if session.proc.poll() is not None:
            return
        checker.check(f"session {session.index} reopened the run", tsv_may_lag=False, staged_ok=False)
        time.sleep(orphan_wait)
        started = proc_table().get(session.proc.pid)
        if started is not None:
            checker.check_orphans(mark, started[2], f"{orphan_wait:.0f} s into session {session.index}")

    threading.Thread(target=watch, daemon=True).start()


def report(result: ChaosResult) -> str:
    lines = [f"chaos run in {result.work} ({result.seconds / 60:.1f} min)"]
    lines.append("kills by phase: " + ", ".join(f"{p} {n}" for p, n in result.phases().most_common()))
    plans = Counter(k.kind for k in result.kills)
    lines.append("kills by plan: " + ", ".join(f"{p} {n}" for p, n in sorted(plans.items())))
    in_flight = sum(k.push_in_flight for k in result.kills)
    if in_flight:
        lines.append(f"kills with a Hub push in flight: {in_flight}")
    for run in result.runs:
        kept = sum(1 for r in run.checker.ledger()[0] if r["status"] == "keep")
        lines.append(
            f"run {run.tag}: {len(run.kills)} kills, {run.resumes} resumes, {run.experiments} experiments after the "
            f"baseline (--max-experiments {run.max_experiments}), {kept} keeps"
        )
    lines.append(f"scratch folders left in TMPDIR by killed sessions: {result.stale_scratch}")
    for title, items in (("lost", result.lost), ("duplicated", result.duplicated), ("orphan", result.orphans)):
        lines += [f"{title}: {item}" for item in items]
    lines += [f"problem: {p}" for p in result.problems]
    lines.append(result.figure())
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["_harness"]:
        return run_hooked_harness(argv[1], int(argv[2]), argv[3:])
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--kills", type=int, default=50, help="SIGKILLs before the run may finish")
    parser.add_argument("--max-experiments", type=int, default=5, help="experiments after the baseline, per run")
    parser.add_argument("--kills-per-run", type=int, default=10, help="kills before a run may finish")
    parser.add_argument("--seed", type=int, default=0, help="draws the kill plans (and the run's seed)")
    parser.add_argument("--push", action="store_true", help="push keeps to a local Hub stand-in")
    parser.add_argument("--rows", type=int, default=200, help="rows per split")
    parser.add_argument("--budget", type=int, default=60, help="training budget (and grace) per trial, seconds")
    parser.add_argument("--quick", action="store_true", help="the CI test's ten kills instead of --kills random ones")
    parser.add_argument("--work", type=Path, help="folder to work in (default: a new temporary folder)")
    parser.add_argument("--json", type=Path, help="also write the result here")
    args = parser.parse_args(argv)
    signal.signal(signal.SIGTERM, signal.default_int_handler)  # a `kill` cleans up like Ctrl-C: nothing left running
    work = args.work or Path(tempfile.mkdtemp(prefix="hf-autoresearch-chaos-"))
    if args.work and work.exists():
        shutil.rmtree(work)
    work.mkdir(parents=True, exist_ok=True)
    schedule = quick_schedule(random.Random(args.seed), args.push) if args.quick else None
    result = run_chaos(
        work,
        args.kills,
        args.max_experiments,
        args.seed,
        args.push,
        args.rows,
        args.budget,
        kills_per_run=args.kills_per_run,
        schedule=schedule,
    )
    print(report(result))
    if args.json:
        args.json.write_text(json.dumps(result.to_dict(), indent=2))
    return 0 if result.ok else 1


if __name__ == "__main__":
    sys.exit(main())
