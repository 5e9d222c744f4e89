"""The package's import graph in figures: files, layers, arrows, imports running back up, circles.

A module's layer is one more than the highest layer it imports at module level (layer 0 imports nothing of the
package). An import "runs back up" when a module imports one on a higher layer than its own; only a lazy
import (inside a function) can, and a circle (modules that reach each other, lazy imports included) is the
worst case of it.

    python scripts/import_layers.py [PACKAGE_DIR]   (default: hf_autoresearch)
"""

import argparse
import ast
import sys
from pathlib import Path


def module_names(root: Path) -> dict[str, Path]:
    names = {}
    for path in sorted(root.rglob("*.py")):
        parts = list(path.relative_to(root.parent).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts = parts[:-1]
        names[".".join(parts)] = path
    return names


def _resolve(name: str, modules: dict) -> str | None:
    while name and name not in modules:
        name = name.rpartition(".")[0]
    return name or None


def import_edges(root: Path) -> tuple[dict[str, set[str]], dict[str, set[str]]]:
    """(module-level imports, every import) of each module, as sets of the package's modules."""
    modules = module_names(root)
    top: dict[str, set[str]] = {m: set() for m in modules}
    every: dict[str, set[str]] = {m: set() for m in modules}
    for module, path in modules.items():
        package = module if path.name == "__init__.py" else module.rpartition(".")[0]
        tree = ast.parse(path.read_text())
        module_level = {id(node) for node in tree.body}
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                targets = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:
                    up = package.split(".")[: len(package.split(".")) - (node.level - 1)]
                    base = ".".join(up + ([base] if base else []))
                targets = [f"{base}.{alias.name}" for alias in node.names] + [base]
            else:
                continue
            for target in targets:
                if target.split(".")[0] != root.name:
                    continue
                found = _resolve(target, modules)
                if not found or found == module or (path.name == "__init__.py" and found.startswith(module + ".")):
                    continue
                every[module].add(found)
                # module-level, or under a module-level `if TYPE_CHECKING:` / try block
                if id(node) in module_level or _at_module_level(tree, node):
                    top[module].add(found)
    return top, every


def _at_module_level(tree: ast.Module, target: ast.AST) -> bool:
    for node in tree.body:
        if isinstance(node, ast.If | ast.Try) and any(child is target for child in ast.walk(node)):
            return True
    return False


def circles(edges: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []
    counter = [0]

    def visit(v: str) -> None:
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on_stack.add(v)
        for w in sorted(edges[v]):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    sys.setrecursionlimit(10_000)
    for v in sorted(edges):
        if v not in index:
            visit(v)
    return found


def _same_circle(a: str, b: str, found: list[list[str]]) -> bool:
    return any(a in circle and b in circle for circle in found)


def layers(top: dict[str, set[str]]) -> dict[str, int]:
    layer: dict[str, int] = {}

    def depth(m: str, seen: frozenset) -> int:
        if m in layer:
            return layer[m]
        if m in seen:  # a module-level circle: cut it here
            return 0
        layer[m] = value = 1 + max((depth(d, seen | {m}) for d in top[m]), default=-1)
        return value

    for m in top:
        depth(m, frozenset())
    return layer


def figures(root: Path) -> dict:
    top, every = import_edges(root)
    layer = layers(top)
    back_up = sorted((m, d) for m in every for d in every[m] if layer[d] > layer[m])
    condensed = {m: {d for d in every[m] if not _same_circle(m, d, circles(every))} for m in every}
    return {
        "files": len(top),
        "layers": max(layer.values()) + 1,
        "layers_all": max(layers(condensed).values()) + 1,
        "arrows": sum(len(d) for d in every.values()),
        "back_up": back_up,
        "circles": circles(every),
    }


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("package", nargs="?", default="hf_autoresearch", help="the package folder")
    result = figures(Path(parser.parse_args(argv).package).resolve())
    print(
        f"files {result['files']}, layers {result['layers']} (module-level imports; "
        f"{result['layers_all']} counting lazy ones), arrows {result['arrows']}, "
        f"imports running back up {len(result['back_up'])}, circles {len(result['circles'])}"
    )
    for low_module, high_module in result["back_up"]:
        print(f"  back up: {low_module} -> {high_module}")
    for circle in result["circles"]:
        print(f"  circle: {' <-> '.join(circle)}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
