"""Names on the Hub and what must be true before publishing starts: a token, a repo id, the tag of a keep."""

from __future__ import annotations

import re

from hf_autoresearch.errors import UserError
from hf_autoresearch.ledger import experiment_id

REPO_ID = r"[\w.-]+/[\w.-]+"


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
    if not re.fullmatch(REPO_ID, repo_id or ""):
        raise HubError(f"--push-to-hub/--repo takes OWNER/NAME, e.g. my-user/intent-minilm; got {repo_id!r}")
    return repo_id


def hub_tag(tag: str, number: int) -> str:
    """The Hub tag of kept experiment `number` of run `tag`: `<tag>-exp-NNNN`."""
    return f"{tag}-{experiment_id(number)}"
