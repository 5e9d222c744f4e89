"""hf-autoresearch: an agent edits train.py, the harness trains it under a budget, a frozen evaluation decides."""

__version__ = "0.1.0"
