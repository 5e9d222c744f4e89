"""Benchmark of the keep rule (issue 19): a simulation of the rule as the code applies it, and real runs on CPU.

    python scripts/bench_keep_rule.py simulate            # old rule (a14688a) beside the new, K = 1..5; ~1 minute
    flock /tmp/heavy.lock python scripts/bench_keep_rule.py real --budget 30 --aa 20 \\
        --model ~/.cache/hf-autoresearch-offline/all-MiniLM-L6-v2 --data ../shared/data/banking77

`simulate` (scripts/keep_rule_sim.py) imports the decision code: the new rule from hf_autoresearch.driver.decision,
the old one from git history (a14688a:hf_autoresearch/decision.py, loaded as a module). `real`
(scripts/keep_rule_real.py) runs the intent recipe: the shipped example patch (the A/B), then edits that only shift
the training seed (the A/A). docs/keep-rule.md holds the tables and what they mean.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    commands = parser.add_subparsers(dest="command", required=True)
    sim = commands.add_parser("simulate", help="Monte Carlo of the old and the new rule")
    sim.add_argument("--runs", type=int, default=4000, help="simulated nights per configuration")
    sim.add_argument("--experiments", type=int, default=100, help="no-effect experiments a night")
    sim.add_argument("--draws", type=int, default=100_000, help="draws for power and bias")
    sim.add_argument("--seed", type=int, default=0)
    sim.add_argument("--ks", default="1,2,3,4,5", help="baseline runs K to simulate, comma-separated")
    real = commands.add_parser("real", help="A/B then A/A on the intent recipe (trains; wrap it in flock)")
    real.add_argument("--budget", type=float, default=30)
    real.add_argument("--aa", type=int, default=20, help="no-effect (seed-shift) experiments")
    real.add_argument("--baseline-repeats", type=int, default=None)
    real.add_argument("--model")
    real.add_argument("--data")
    real.add_argument("--workdir", help="where the throwaway project and the run go (default: a temp folder)")
    args = parser.parse_args(argv)
    if args.command == "real":
        import keep_rule_real

        return keep_rule_real.main(args)
    import keep_rule_sim

    ks = [int(k) for k in args.ks.split(",")]
    print(keep_rule_sim.report(args.runs, args.experiments, args.draws, args.seed, ks))
    return 0


if __name__ == "__main__":
    sys.exit(main())
