"""Kept experiments as Hub model revisions tied to their git commits.

names.py (token, repo id, tags), card.py (the model card), revision.py (the files and commit of one revision),
pushes.py (hub.jsonl), publisher.py (the background publisher with idempotent retries).
"""

from hf_autoresearch.hub.card import model_card, model_kind, task_card_facts
from hf_autoresearch.hub.commit import retryable
from hf_autoresearch.hub.names import HubError, check_repo_id, hub_tag, require_token
from hf_autoresearch.hub.publisher import HubPublisher
from hf_autoresearch.hub.pushes import HUB_FILE, pushed
from hf_autoresearch.hub.revision import commit_message, revision_files

__all__ = [
    "HUB_FILE",
    "HubError",
    "HubPublisher",
    "check_repo_id",
    "commit_message",
    "hub_tag",
    "model_card",
    "model_kind",
    "pushed",
    "require_token",
    "retryable",
    "revision_files",
    "task_card_facts",
]
