"""Anthropic's text editor tool, served on one file only: the worktree's train.py.

`view`, `str_replace` and `insert` work on train.py; any other path, and `create`, raise a ToolError that the
agent returns to the model as an `is_error` tool result, with nothing changed.
"""

from __future__ import annotations

from pathlib import Path

EDITOR_TOOL = {"type": "text_editor_20250728", "name": "str_replace_based_edit_tool"}
SNIPPET_LINES = 4  # context shown around an edit


class ToolError(Exception):
    """A tool call that failed; the message goes back to the model."""


class TrainPyEditor:
    def __init__(self, train_py: Path, worktree: Path):
        self.path = Path(train_py)
        self.original = self.path.read_text()
        rel = self.path.relative_to(worktree).as_posix()
        # the names a model may reasonably use for the file; it is told `train.py`
        self.names = {"train.py", "./train.py", "/train.py", rel, f"/{rel}", f"./{rel}", str(self.path)}

    def run(self, args: dict) -> str:
        if not isinstance(args, dict):
            raise ToolError("the tool input must be an object with `command` and `path`")
        command, path = args.get("command"), str(args.get("path", "")).strip()
        if command == "create":
            raise ToolError("`create` is not allowed: the only file you may change is train.py, which exists")
        if path not in self.names:
            raise ToolError(f"only train.py may be viewed or edited (path `train.py`); {path!r} is refused")
        if command == "view":
            return self.view(args.get("view_range"))
        if command == "str_replace":
            return self.str_replace(args.get("old_str"), args.get("new_str", ""))
        if command == "insert":
            text = args.get("insert_text", args.get("new_str"))
            return self.insert(args.get("insert_line"), text)
        raise ToolError(f"unknown command {command!r}; use view, str_replace or insert")

    def view(self, view_range=None) -> str:
        lines = self.path.read_text().splitlines()
        start, end = 1, len(lines)
        if view_range is not None:
            if not (
                isinstance(view_range, list) and len(view_range) == 2 and all(isinstance(v, int) for v in view_range)
            ):
                raise ToolError("view_range must be two integers [start, end] (end -1 means to the end)")
            start, end = view_range[0], (len(lines) if view_range[1] == -1 else view_range[1])
            if not 1 <= start <= max(end, 1) or end > len(lines):
                raise ToolError(f"view_range {view_range} is outside train.py's lines 1 to {len(lines)}")
        return _numbered(lines[start - 1 : end], start)

    def str_replace(self, old: str | None, new: str | None) -> str:
        if not isinstance(old, str) or not old:
            raise ToolError("str_replace needs a non-empty old_str")
        new = "" if new is None else new
        if not isinstance(new, str):
            raise ToolError("new_str must be a string")
        text = self.path.read_text()
        count = text.count(old)
        if count == 0:
            raise ToolError(
                "old_str was not found in train.py; view the file and copy the text exactly, whitespace too"
            )
        if count > 1:
            first_lines = _lines_of(text, old)
            raise ToolError(
                f"old_str occurs {count} times (lines {first_lines}); include more context to make it unique"
            )
        at = text.index(old)
        self.path.write_text(text[:at] + new + text[at + len(old) :])
        line = text[:at].count("\n") + 1
        return "Edited train.py. " + self._snippet(line, new.count("\n") + 1)

    def insert(self, line, text) -> str:
        if not isinstance(text, str):
            raise ToolError("insert needs insert_text, the text to insert")
        lines = self.path.read_text().splitlines(keepends=True)
        if not isinstance(line, int) or isinstance(line, bool) or not 0 <= line <= len(lines):
            raise ToolError(f"insert_line must be an integer from 0 (the top) to {len(lines)}")
        if lines and not lines[-1].endswith("\n") and line == len(lines):
            lines[-1] += "\n"
        block = text if text.endswith("\n") else text + "\n"
        self.path.write_text("".join(lines[:line]) + block + "".join(lines[line:]))
        return "Inserted into train.py. " + self._snippet(line + 1, block.count("\n"))

    def finish(self, description) -> str:
        """The validated one-line description; a ToolError if the edit is not ready."""
        if not isinstance(description, str) or not description.strip():
            raise ToolError("finish_experiment needs a non-empty one-line description")
        text = self.path.read_text()
        if text == self.original:
            raise ToolError("train.py is unchanged: make your edit first, then call finish_experiment")
        try:
            compile(text, "train.py", "exec")
        except (SyntaxError, ValueError) as err:
            raise ToolError(f"train.py does not compile ({type(err).__name__}: {err}); fix it, then finish") from err
        return " ".join(description.strip().splitlines()[0].split())[:200]

    def _snippet(self, line: int, count: int) -> str:
        lines = self.path.read_text().splitlines()
        start = max(1, line - SNIPPET_LINES)
        end = min(len(lines), line + count - 1 + SNIPPET_LINES)
        return f"Lines {start}-{end} now read:\n" + _numbered(lines[start - 1 : end], start)


def _numbered(lines: list[str], first: int) -> str:
    return "\n".join(f"{n:6}\t{line}" for n, line in enumerate(lines, first))


def _lines_of(text: str, needle: str) -> str:
    found, at = [], text.find(needle)
    while at != -1 and len(found) < 5:
        found.append(str(text[:at].count("\n") + 1))
        at = text.find(needle, at + 1)
    return ", ".join(found)
