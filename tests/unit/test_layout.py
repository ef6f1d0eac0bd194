"""The house's rules, read from the source: which package may import which, and no cycles.

The product is ``sandbox``, ``broker``, ``runtimes`` and ``seccomp``. ``runtimes`` runs inside
the jail and imports none of the others; ``broker`` imports none of them either; the product
imports neither the benchmark harness nor the tests; the shared vocabulary at ``sandbox``'s
root imports no wing; and the module graph, function-level imports included, has no cycle
(a function-level import that exists to break a cycle is a cycle all the same).
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PRODUCT = ("sandbox", "broker", "runtimes", "seccomp")
WINGS = ("client", "host", "jail", "pyodide", "service", "n8n", "http")


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _modules(packages: tuple[str, ...]) -> dict[str, Path]:
    return {_module_name(p): p for pkg in packages for p in sorted((ROOT / pkg).rglob("*.py"))
            if "node_modules" not in p.parts}


def _imports(path: Path, known: set[str]) -> set[str]:
    """Every module of ``known`` that ``path`` imports, at any depth of its code."""
    name = _module_name(path)
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        targets: list[str] = []
        if isinstance(node, ast.Import):
            targets = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*anchor, base] if base else anchor)
            targets = [f"{base}.{a.name}" for a in node.names] + [base]
        for target in targets:
            while target and target not in known:
                target = target.rpartition(".")[0]
            # every module runs its packages' __init__ first: not an edge of the graph
            if target and target != name and not name.startswith(target + "."):
                found.add(target)
    return found


def _graph(packages: tuple[str, ...]) -> dict[str, set[str]]:
    modules = _modules(packages)
    known = set(modules)
    return {name: _imports(path, known) for name, path in modules.items()}


def _top(name: str) -> str:
    return name.split(".")[0]


def test_the_product_module_graph_has_no_cycle():
    graph = _graph(PRODUCT)
    cycles: list[list[str]] = []
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(node: str) -> None:
        state[node] = 1
        stack.append(node)
        for nxt in sorted(graph[node]):
            if state.get(nxt) == 1:
                cycles.append(stack[stack.index(nxt):] + [nxt])
            elif nxt not in state:
                visit(nxt)
        stack.pop()
        state[node] = 2

    for node in sorted(graph):
        if node not in state:
            visit(node)
    assert cycles == []


@pytest.mark.parametrize("package, forbidden", [
    ("runtimes", ("sandbox", "broker", "benchmarks", "tests")),
    ("broker", ("sandbox", "runtimes", "benchmarks", "tests")),
    ("seccomp", ("sandbox", "broker", "benchmarks", "tests")),
    ("sandbox", ("benchmarks", "tests")),
])
def test_a_package_imports_only_what_lies_below_it(package, forbidden):
    graph = _graph(PRODUCT + ("benchmarks", "tests"))
    wrong = sorted(f"{m} -> {t}" for m, targets in graph.items() if _top(m) == package
                   for t in targets if _top(t) in forbidden)
    assert wrong == []


def test_the_shared_vocabulary_at_sandboxs_root_imports_no_wing():
    graph = _graph(PRODUCT)
    # the package's surface (``sandbox``) and its entry point (``__main__``) are not vocabulary
    root = [m for m in graph if m.count(".") == 1 and m.startswith("sandbox.")
            and m.split(".")[1] not in (*WINGS, "__main__")]
    wrong = sorted(f"{m} -> {t}" for m in root for t in graph[m]
                   if t.startswith("sandbox.") and t.split(".")[1] in WINGS)
    assert wrong == []


def test_the_benchmark_harness_does_not_import_the_tests():
    graph = _graph(("benchmarks", "tests"))
    wrong = sorted(f"{m} -> {t}" for m, targets in graph.items() if _top(m) == "benchmarks"
                   for t in targets if _top(t) == "tests")
    assert wrong == []


def test_the_brokers_status_names_are_the_outcomes():
    """The broker validates and counts statuses on the wire without importing the jail's
    code, so it spells the names itself; they are the names of ``runtimes.outcome.Status``,
    in its order, and the host speaks only the enum."""
    from broker import protocol
    from runtimes.outcome import Status

    assert protocol.STATUSES == tuple(s.value for s in Status)
