"""What a run tells the world besides its ledger: Hub pushes, live terminal progress, an experiment tracker.

`hf-autoresearch run` builds these from its options before the run starts (so a missing token or tracker fails in
seconds) and attaches them to the loop as callbacks.
"""

from __future__ import annotations

import os
import sys
from contextlib import contextmanager

from hf_autoresearch.errors import UserError


class LoopObservers:
    """The loop's observers a run's options ask for: the Hub publisher, the tracker, the live progress line."""

    def __init__(self, publisher=None, tracker=None, progress=None):
        self.publisher, self.tracker, self.progress = publisher, tracker, progress

    @classmethod
    def from_args(cls, args) -> LoopObservers:
        """Check everything that can fail before any data is prepared or model trained."""
        from hf_autoresearch.hub import check_repo_id, require_token
        from hf_autoresearch.reporting.tracking import make_tracker

        if (args.public or args.promote or args.dry_run) and not args.push_to_hub:
            raise UserError("--public, --promote and --dry-run go with --push-to-hub OWNER/NAME")
        if args.push_to_hub:
            check_repo_id(args.push_to_hub)
            if not args.dry_run:
                require_token()
        return cls(tracker=make_tracker(args.tracker))

    @contextmanager
    def attach(self, run, args):
        """Callbacks on the run while the loop runs; pushes finish (and --promote happens) when it ends."""
        from hf_autoresearch.hub import HubPublisher
        from hf_autoresearch.reporting.progress import LiveProgress

        if args.push_to_hub:
            self.publisher = HubPublisher(
                run.folder,
                args.push_to_hub,
                private=not args.public,
                promote=args.promote,
                dry_run=args.dry_run,
                endpoint=os.environ.get("HF_ENDPOINT"),  # read now, not at import, so tests and wrappers can set it
                log=run.log,
            )
            self.publisher.prepare()
            run.callbacks.append(self.publisher)
            for record in run.ledger.records():  # keeps of an interrupted session that never reached the Hub
                if record.status == "keep" and not _is_pushed(self.publisher, record.number):
                    self.publisher.submit(record)
        if self.tracker is not None:
            run.callbacks.append(self.tracker)
        self.progress = LiveProgress()
        finished = False
        try:
            with self.progress.attach(run):
                yield self
            finished = True
        finally:
            if self.tracker is not None:
                self.tracker.close()
            if self.publisher is not None:
                self._finish_pushes(run, promote=finished and args.promote)

    def _finish_pushes(self, run, promote: bool) -> None:
        failures = self.publisher.close(promote=promote)
        if failures:
            print(
                f"{len(failures)} Hub push(es) failed; the models are in {run.folder / 'models'}. Retry with: "
                f"hf-autoresearch push {run.config.tag} --repo {self.publisher.repo_id}",
                file=sys.stderr,
            )


def _is_pushed(publisher, number: int) -> bool:
    from hf_autoresearch.hub import pushed

    return number in pushed(publisher.folder, publisher.repo_id)
