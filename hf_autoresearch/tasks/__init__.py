"""Task-specific pieces the harness owns and train.py may import (prompts, data forms), one module a task."""
