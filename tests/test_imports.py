"""The package's modules import one another without cycles (issue 37).

Every `import` / `from ... import` statement counts, those inside functions too: a cycle that only
closes at call time still ties two modules together, and becomes an ImportError the day someone
moves an import to the top of a file.
"""
import ast
from pathlib import Path

import fclip_derain

PACKAGE = Path(fclip_derain.__file__).parent


def module_sources(root: Path = PACKAGE) -> dict[str, str]:
    out = {}
    for f in sorted(root.rglob("*.py")):
        parts = list(f.relative_to(root.parent).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts = parts[:-1]
        out[".".join(parts)] = f.read_text()
    return out


def import_graph(sources: dict[str, str], packages: set[str]) -> dict[str, set[str]]:
    """module -> the package modules it imports (a package stands for its __init__)."""
    top = next(iter(sources)).split(".")[0]
    graph = {m: set() for m in sources}

    def resolve(name: str) -> str | None:
        while name and name not in sources:  # `from .x import f`: f is an attribute of x
            name = name.rpartition(".")[0]
        return name or None

    for mod, text in sources.items():
        pkg = mod if mod in packages else mod.rpartition(".")[0]
        for node in ast.walk(ast.parse(text)):
            targets = []
            if isinstance(node, ast.Import):
                targets = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom):
                if node.level:
                    base = pkg.split(".")
                    base = ".".join(base[:len(base) - (node.level - 1)])
                    base = f"{base}.{node.module}" if node.module else base
                else:
                    base = node.module or ""
                # `from . import x` imports the module x where there is one
                targets = [f"{base}.{a.name}" if f"{base}.{a.name}" in sources else base for a in node.names]
            for t in targets:
                if t == top or t.startswith(top + "."):
                    r = resolve(t)
                    if r and r != mod:
                        graph[mod].add(r)
    return graph


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan)."""
    index, low, stack, on, out = {}, {}, [], set(), []

    def visit(v):
        index[v] = low[v] = len(index)
        stack.append(v)
        on.add(v)
        for w in sorted(graph[v]):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                out.append(sorted(comp))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return out


def _packages(root: Path = PACKAGE) -> set[str]:
    return {".".join(f.parent.relative_to(root.parent).parts) for f in root.rglob("__init__.py")}


def test_no_import_cycle_in_the_package():
    graph = import_graph(module_sources(), _packages())
    assert len(graph) > 20  # the walk found the package's modules
    assert "fclip_derain.options" in graph["fclip_derain.inference.derainer"]
    found = cycles(graph)
    assert not found, "import cycles (each line: modules that import one another): " + "; ".join(
        " <-> ".join(c) for c in found)


def test_cycle_finder_sees_imports_inside_functions():
    # the two cycles fixed by issue 37, in miniature: a function-level import closes each one
    sources = {
        "pkg": "",
        "pkg.cli": "from .jobs import WORK_SIZE\ndef f():\n    from .benchmark import run\n",
        "pkg.benchmark": "def run():\n    from .cli import PRECISIONS\n",
        "pkg.inference": "from .derainer import Derainer\n",
        "pkg.inference.derainer": "from .jobs import WORK_SIZE\n",
        "pkg.inference.jobs": "class S:\n    def build(self):\n        from .derainer import Derainer\n",
        "pkg.jobs": "WORK_SIZE = 1\n",
    }
    found = cycles(import_graph(sources, {"pkg", "pkg.inference"}))
    assert sorted(found) == [["pkg.benchmark", "pkg.cli"], ["pkg.inference.derainer", "pkg.inference.jobs"]]
