"""The import graph of the product's own packages has no cycle (issue 13).

Every ``import`` statement is counted, at module level or inside a function (a deferred import that only hides a
cycle is still a cycle), except those under ``if TYPE_CHECKING:`` (never executed). Migrations are left out:
Django loads them itself and they import only ``django`` and ``onboarding`` helpers by design.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("connectwise", "onboarding")


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _modules() -> dict[str, Path]:
    found: dict[str, Path] = {}
    for package in PACKAGES:
        for path in (ROOT / package).rglob("*.py"):
            if "migrations" in path.parts:
                continue
            found[_module_name(path)] = path
    return found


def _is_type_checking(node: ast.If) -> bool:
    test = node.test
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def _imports(tree: ast.AST):
    """Yield every Import/ImportFrom node outside ``if TYPE_CHECKING:`` blocks."""
    stack = [tree]
    while stack:
        node = stack.pop()
        for child in ast.iter_child_nodes(node):
            if isinstance(child, ast.If) and _is_type_checking(child):
                stack.extend(child.orelse)
                continue
            if isinstance(child, ast.Import | ast.ImportFrom):
                yield child
            stack.append(child)


def _from_base(name: str, is_package: bool, node: ast.ImportFrom) -> str:
    """The absolute module a ``from X import ...`` in module ``name`` reads from (relative levels resolved)."""
    if not node.level:
        return node.module or ""
    base_parts = name.split(".")
    if not is_package:
        base_parts = base_parts[:-1]
    base_parts = base_parts[: len(base_parts) - (node.level - 1)]
    return ".".join(base_parts + ([node.module] if node.module else []))


def import_graph() -> dict[str, set[str]]:
    """``{module: {imported product modules}}``. ``from pkg import sub`` counts ``pkg.sub`` when it is a module (and
    ``pkg`` itself only when some imported name is not a submodule)."""
    modules = _modules()
    graph: dict[str, set[str]] = {name: set() for name in modules}
    for name, path in modules.items():
        is_package = path.name == "__init__.py"
        tree = ast.parse(path.read_text(), filename=str(path))
        for node in _imports(tree):
            targets: list[str] = []
            if isinstance(node, ast.Import):
                targets = [alias.name for alias in node.names]
            else:
                base = _from_base(name, is_package, node)
                submodules = [f"{base}.{alias.name}" for alias in node.names]
                targets.extend(submodules)
                if not all(sub in modules for sub in submodules):  # a name defined in ``base`` itself
                    targets.append(base)
            for target in targets:
                if target in modules and target != name:
                    graph[name].add(target)
    return graph


def find_cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan), each sorted."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    on_stack: set[str] = set()
    stack: list[str] = []
    components: list[list[str]] = []
    counter = [0]

    def visit(node: str) -> None:
        index[node] = low[node] = counter[0]
        counter[0] += 1
        stack.append(node)
        on_stack.add(node)
        for nxt in sorted(graph.get(node, ())):
            if nxt not in index:
                visit(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in on_stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            component = []
            while True:
                top = stack.pop()
                on_stack.discard(top)
                component.append(top)
                if top == node:
                    break
            if len(component) > 1:
                components.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return components


def test_the_analyser_sees_a_cycle():
    assert find_cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
    assert find_cycles({"a": {"b"}, "b": set()}) == []


def test_the_analyser_reads_deferred_imports_and_skips_type_checking():
    tree = ast.parse(
        "from typing import TYPE_CHECKING\n"
        "if TYPE_CHECKING:\n    from .hidden import X\n"
        "def f():\n    from .deferred import y\n"
    )
    assert [node.module for node in _imports(tree)] == ["typing", "deferred"]


def test_the_analyser_resolves_relative_imports():
    graph = import_graph()
    assert {"connectwise.checks.base", "connectwise.checks.context"} <= graph["connectwise.checks.runner"]
    assert "onboarding.views.wizard" in graph["onboarding.views.step_forms"]
    assert "connectwise.checks.runner" in graph["onboarding.cw"]


@pytest.mark.parametrize("package", PACKAGES)
def test_no_import_cycle(package):
    cycles = [c for c in find_cycles(import_graph()) if any(m.split(".")[0] == package for m in c)]
    assert cycles == [], "import cycles:\n" + "\n".join(" <-> ".join(c) for c in cycles)


def _private_names(name: str, is_package: bool, tree: ast.AST, modules) -> list[str]:
    """``"importer: module._name"`` for each ``from X import _name`` in module ``name`` where ``X`` is another
    product module and ``_name`` is not a submodule of it."""
    found = []
    for node in _imports(tree):
        if not isinstance(node, ast.ImportFrom):
            continue
        base = _from_base(name, is_package, node)
        if base not in modules or base == name:
            continue
        for alias in node.names:
            private = alias.name.startswith("_") and not alias.name.startswith("__")
            if private and f"{base}.{alias.name}" not in modules:
                found.append(f"{name}: {base}.{alias.name}")
    return found


def private_imports(package: str) -> list[str]:
    """Every private name a module of ``package`` imports from another module of the project: a module's
    ``_private`` names are its own (issue 13); a helper two modules share is public in the module that owns it."""
    modules = _modules()
    found = []
    for name, path in sorted(modules.items()):
        if name.split(".")[0] == package:
            tree = ast.parse(path.read_text(), filename=str(path))
            found += _private_names(name, path.name == "__init__.py", tree, modules)
    return found


def test_the_private_import_check_sees_private_names_only():
    modules = {"pkg", "pkg.a", "pkg.b", "pkg.sub", "pkg.sub._impl"}
    tree = ast.parse(
        "from .b import _helper, public\n"
        "from pkg.b import _CONST as renamed\n"
        "from .sub import _impl\n"  # a private submodule: a module, not a name
        "from . import b\n"
        "from os import _exit\n"  # not ours
        "from typing import TYPE_CHECKING\n"
        "if TYPE_CHECKING:\n    from .b import _only_for_types\n"
        "def f():\n    from .b import _deferred\n"
    )
    assert _private_names("pkg.a", False, tree, modules) == [
        "pkg.a: pkg.b._helper",
        "pkg.a: pkg.b._CONST",
        "pkg.a: pkg.b._deferred",
    ]


# Known exceptions (none today): "importer: module._name" lines, each to be removed when the name is made public.
KNOWN_PRIVATE_IMPORTS: dict[str, list[str]] = {}


@pytest.mark.parametrize("package", PACKAGES)
def test_no_module_imports_another_modules_private_name(package):
    found = private_imports(package)
    known = KNOWN_PRIVATE_IMPORTS.get(package, [])
    assert found == known, (
        "private names imported from another module:\n"
        + "\n".join(f for f in found if f not in known)
        + "".join(f"\nfixed, drop it from KNOWN_PRIVATE_IMPORTS: {f}" for f in known if f not in found)
    )
