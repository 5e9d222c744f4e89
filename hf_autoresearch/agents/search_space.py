"""Search spaces declared in train.py comments, and rewriting just those constants.

A knob carries its space in its comment, anywhere after `search:`:

    LEARNING_RATE = 5e-5  # peak AdamW learning rate; search: log(1e-5, 3e-3)
    BATCH_SIZE = 32  # search: choice(8, 16, 32, 64)
    WARMUP = 0.1  # search: float(0, 0.3)
    LAYERS_FROZEN = 0  # search: int(0, 6)

Only UPPER_CASE constants assigned at the top level (column 0) may carry one. Rewriting replaces the value's
characters on those lines and nothing else, so the rest of the file stays byte-identical.
"""

from __future__ import annotations

import ast
import io
import json
import math
import re
import tokenize
from dataclasses import dataclass
from pathlib import Path

from hf_autoresearch.errors import UserError

KINDS = ("log", "float", "int", "choice")
MARKER = re.compile(r"\bsearch:\s*(?P<spec>.*)$")
ASSIGNMENT = re.compile(r"^(?P<name>[A-Za-z_][A-Za-z0-9_]*)\s*=(?!=)")
CONSTANT = re.compile(r"^[A-Z][A-Z0-9_]*$")
SYNTAX = "log(low, high), float(low, high), int(low, high) or choice(a, b, ...)"


class SearchSpaceError(UserError):
    """A `# search:` comment that cannot be used; the message names the file, the line and the fix."""


@dataclass(frozen=True)
class Space:
    name: str  # the constant
    kind: str  # log | float | int | choice
    args: tuple  # (low, high) for ranges, the values for choice
    value: object  # the value the file holds now
    line: int  # 1-based line number
    start: int  # column span of the value's source text on that line
    end: int

    def distribution(self):
        """The optuna distribution of this space."""
        from optuna.distributions import CategoricalDistribution, FloatDistribution, IntDistribution

        if self.kind == "choice":
            return CategoricalDistribution(self.args)
        if self.kind == "int":
            return IntDistribution(self.args[0], self.args[1])
        return FloatDistribution(float(self.args[0]), float(self.args[1]), log=self.kind == "log")

    def contains(self, value) -> bool:
        if self.kind == "choice":
            return any(value == v and type(value) is type(v) for v in self.args)
        low, high = self.args
        return low <= value <= high


def format_value(space: Space, value) -> str:
    """The Python source for `value` as this space writes it: floats to 3 significant digits."""
    if space.kind == "int":
        return str(int(value))
    if space.kind in ("log", "float"):
        text = f"{float(value):.3g}"
        return text if any(c in text for c in ".en") else text + ".0"  # keep a float a float
    if isinstance(value, str):
        return json.dumps(value)  # double quotes, like the rest of the recipes
    return repr(value)


def find_spaces(source: str, file: str | Path = "train.py") -> list[Space]:
    """Every `search:` declaration in `source`, in file order; errors name the file and line."""
    lines = io.StringIO(source).readlines()  # split exactly as tokenize splits
    spaces: list[Space] = []
    try:
        tokens = list(tokenize.generate_tokens(io.StringIO(source).readline))
    except (tokenize.TokenError, SyntaxError) as err:
        raise SearchSpaceError(f"{file}: cannot be tokenized: {err}") from err
    for token in tokens:
        if token.type != tokenize.COMMENT:
            continue
        marker = MARKER.search(token.string)
        if not marker:
            continue
        number = token.start[0]
        where = f"{file}:{number}"
        line = lines[number - 1]
        assignment = ASSIGNMENT.match(line)
        if not assignment:
            raise SearchSpaceError(
                f"{where}: a `search:` comment must sit on a top-level constant assignment (NAME = value  # search: "
                f"...), found {line.strip()!r}"
            )
        name = assignment.group("name")
        if not CONSTANT.match(name):
            raise SearchSpaceError(
                f"{where}: {name} is not an UPPER_CASE constant; only constants carry a search space"
            )
        value_text = line[assignment.end() : token.start[1]]
        start = assignment.end() + len(value_text) - len(value_text.lstrip())
        end = assignment.end() + len(value_text.rstrip())
        try:
            value = ast.literal_eval(line[start:end])
        except (ValueError, SyntaxError) as err:
            raise SearchSpaceError(
                f"{where}: {name} = {line[start:end]!r} is not a literal value; a searched constant holds a number, "
                "a string or a bool"
            ) from err
        kind, args = _parse_spec(marker.group("spec"), where)
        space = Space(name, kind, args, value, number, start, end)
        _check(space, where)
        if any(s.name == name for s in spaces):
            raise SearchSpaceError(f"{where}: {name} carries a search space twice; keep one")
        spaces.append(space)
    return spaces


def _parse_spec(spec: str, where: str) -> tuple[str, tuple]:
    """`kind(args)` at the start of `spec`; free text may follow the closing parenthesis."""
    call = None
    for i, char in enumerate(spec):
        if char != ")":
            continue
        try:
            node = ast.parse(spec[: i + 1].strip(), mode="eval").body
        except SyntaxError:
            continue
        call = node
        break
    if not isinstance(call, ast.Call) or not isinstance(call.func, ast.Name):
        raise SearchSpaceError(f"{where}: cannot read the search space {spec.strip()!r}; write {SYNTAX}")
    kind = call.func.id
    if kind not in KINDS:
        raise SearchSpaceError(f"{where}: unknown search space {kind!r}; write {SYNTAX}")
    if call.keywords:
        raise SearchSpaceError(f"{where}: {kind}(...) takes positional values only; write {SYNTAX}")
    try:
        args = tuple(ast.literal_eval(arg) for arg in call.args)
    except ValueError as err:
        raise SearchSpaceError(f"{where}: the values of {kind}(...) must be literals: {err}") from err
    return kind, args


def _check(space: Space, where: str) -> None:
    kind, args, value = space.kind, space.args, space.value
    if kind == "choice":
        if len(args) < 2:
            raise SearchSpaceError(f"{where}: choice(...) needs at least two values")
        if len(set(map(repr, args))) != len(args):
            raise SearchSpaceError(f"{where}: choice{args} repeats a value")
        if not all(isinstance(a, (bool, int, float, str)) or a is None for a in args):
            raise SearchSpaceError(f"{where}: choice(...) values must be numbers, strings, bools or None")
    else:
        if len(args) != 2:
            raise SearchSpaceError(f"{where}: {kind}(...) takes exactly two values, low and high; got {len(args)}")
        numbers = int if kind == "int" else (int, float)
        if not all(isinstance(a, numbers) and not isinstance(a, bool) for a in args):
            raise SearchSpaceError(f"{where}: {kind}(low, high) needs {'integers' if kind == 'int' else 'numbers'}")
        low, high = args
        if not low < high or not all(math.isfinite(a) for a in args):
            raise SearchSpaceError(f"{where}: {kind}({low}, {high}) needs finite low < high")
        if kind == "log" and low <= 0:
            raise SearchSpaceError(f"{where}: log({low}, {high}) needs low > 0; use float(...) to include 0")
        if not isinstance(value, numbers) or isinstance(value, bool):
            raise SearchSpaceError(f"{where}: {space.name} = {value!r} does not fit {kind}(...), which holds numbers")
    if not space.contains(value):
        raise SearchSpaceError(
            f"{where}: {space.name} = {value!r} lies outside {kind}{args}; widen the space or change the value"
        )


def rewrite(source: str, values: dict[str, object], file: str | Path = "train.py") -> str:
    """`source` with each named constant set to its new value; every other byte unchanged."""
    spaces = {s.name: s for s in find_spaces(source, file)}
    unknown = sorted(set(values) - set(spaces))
    if unknown:
        raise SearchSpaceError(f"{file}: {', '.join(unknown)} carries no `search:` space")
    lines = io.StringIO(source).readlines()
    for name, value in values.items():
        space = spaces[name]
        line = lines[space.line - 1]
        lines[space.line - 1] = line[: space.start] + format_value(space, value) + line[space.end :]
    return "".join(lines)
