"""Reading a run, changing nothing: `summary` (what a run's ledger says), `status` (the table), `report` and `plot`
(report.md/html and progress.png), `progress` (the live line), `tracking` (trackio), `larger_baseline` (the larger
model trained beside a run).
"""
