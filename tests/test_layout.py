"""The house rules of the package layout, checked on the source (no import needed).

* every module of ``minstn/`` has one job a newcomer can read: at most 600 lines;
* the import graph has no cycle, counting function-level imports and the package
  ``__init__`` that importing a submodule runs first (a back-arrow such as
  ``nn.layers -> minstn.functional -> nn.*`` is then a cycle too);
* the library never imports the application floor (``minstn.experiments``) nor the
  façade ``minstn.functional`` (it only re-exports, for users); the kernels never import
  the autograd engine;
* the tutorials import nothing private from minstn.
"""

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "minstn"


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts = parts[:-1]
    return ".".join(parts)


MODULES = {_module_name(p): p for p in PACKAGE.rglob("*.py")}


def _is_package(name: str) -> bool:
    return MODULES.get(name, Path()).name == "__init__.py"


def _imports(name: str, path: Path) -> set:
    """Every minstn module that ``name`` imports, anywhere in the file."""
    package = name if _is_package(name) else name.rpartition(".")[0]
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            targets = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[:len(base) - node.level + 1]
                prefix = ".".join(base + ([node.module] if node.module else []))
            else:
                prefix = node.module or ""
            # `from pkg import sub` imports the module pkg.sub when there is one
            targets = [f"{prefix}.{a.name}" if f"{prefix}.{a.name}" in MODULES else prefix for a in node.names]
        else:
            continue
        for target in targets:
            while target and target not in MODULES:
                target = target.rpartition(".")[0]
            if target.startswith("minstn"):
                found.add(target)
                # importing a.b.c runs a.b's __init__ first (unless we are inside a.b)
                parent = target.rpartition(".")[0]
                while parent.count(".") >= 1 and not name.startswith(parent):
                    found.add(parent)
                    parent = parent.rpartition(".")[0]
    found.discard(name)
    found.discard("minstn")  # every module runs the root __init__; it imports the public face only
    return found


GRAPH = {name: _imports(name, path) for name, path in MODULES.items()}


def test_no_module_over_600_lines():
    long = {name: n for name, p in MODULES.items() if (n := len(p.read_text().splitlines())) > 600}
    assert not long, long


def test_import_graph_has_no_cycle():
    state, cycles = {}, []

    def visit(node, stack):
        state[node] = "open"
        for nxt in sorted(GRAPH[node]):
            if state.get(nxt) == "open":
                cycles.append(stack[stack.index(nxt):] + [nxt])
            elif nxt not in state:
                visit(nxt, stack + [nxt])
        state[node] = "done"

    for name in sorted(GRAPH):
        if name not in state:
            visit(name, [name])
    assert not cycles, "\n".join(" -> ".join(c) for c in cycles)


def test_the_cycle_check_finds_a_cycle():
    """Negative control: a graph with a back-arrow through a package __init__."""
    fake = {"minstn.nn": {"minstn.nn.layers"}, "minstn.nn.layers": {"minstn.functional"},
            "minstn.functional": {"minstn.nn.functional", "minstn.nn"}, "minstn.nn.functional": set()}
    saved = dict(GRAPH)
    GRAPH.clear()
    GRAPH.update(fake)
    try:
        with pytest.raises(AssertionError, match="minstn.nn.layers -> minstn.functional"):
            test_import_graph_has_no_cycle()
    finally:
        GRAPH.clear()
        GRAPH.update(saved)


def test_layers_point_down():
    for name, deps in GRAPH.items():
        application = name.startswith(("minstn.experiments", "minstn.__main__"))
        if not application:
            assert not {d for d in deps if d.startswith("minstn.experiments")}, name
            assert "minstn.functional" not in deps, f"{name} imports the façade minstn.functional"
        if name.startswith("minstn.kernels"):
            assert "minstn.autograd" not in deps, f"{name}: kernels work on plain arrays"


def test_tutorials_import_nothing_private():
    for path in sorted((ROOT / "tutorials").rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("minstn"):
                assert not any(part.startswith("_") for part in node.module.split(".")), (path.name, node.module)
                assert not any(a.name.startswith("_") for a in node.names), (path.name, [a.name for a in node.names])
            if isinstance(node, ast.Attribute) and node.attr.startswith("_") and not node.attr.startswith("__"):
                value = node.value
                while isinstance(value, ast.Attribute):
                    value = value.value
                if isinstance(value, ast.Name) and value.id in ("mt", "minstn", "F", "nn", "cpu", "pixel"):
                    raise AssertionError(f"{path.name}: uses the private {ast.unparse(node)}")
