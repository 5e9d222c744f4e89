"""The driver: one thread that proposes, commits, judges and records.

`run` starts or resumes a run (its folder, data and worktree); `loop` asks the agent for edits and commits them;
`inflight` drives the judgements of the experiments in flight, `assess` says what each one trains and how it is
judged, `decision` holds the keep rule; `pending` keeps proposals a killed driver had in flight, `kept_models` the
kept models' folders, `preview` a kept model's outputs for the agent, `slots` what each slot runs now.
"""
