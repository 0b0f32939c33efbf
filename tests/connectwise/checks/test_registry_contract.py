"""Adding a step is one module, one registry line and one test file (issue 13): this test enforces it."""

from __future__ import annotations

import ast
import inspect
from pathlib import Path

import pytest

from connectwise.checks import registry, runner
from connectwise.checks.base import RepairableStep, StepModule

ROOT = Path(__file__).resolve().parents[3]
CHECKS = ROOT / "connectwise" / "checks"


def _members(protocol) -> set[str]:
    names = set()
    for klass in protocol.__mro__:
        if klass.__name__ in {"Protocol", "Generic", "object"}:
            continue
        names |= {n for n in vars(klass) if not n.startswith("_")} | set(
            getattr(klass, "__annotations__", {})
        )
    return names


@pytest.mark.parametrize("info", registry.STEPS, ids=lambda info: info.key)
def test_each_step_is_one_module_that_keeps_the_protocol(info):
    module = info.module
    assert Path(module.__file__) == CHECKS / f"{info.key}.py"
    assert module.KEY == info.key
    for name in _members(StepModule):
        assert hasattr(module, name), f"{info.key} lacks {name} (base.StepModule)"
    if hasattr(module, "plan_operations"):
        for name in _members(RepairableStep):
            assert hasattr(module, name), f"{info.key} repairs but lacks {name} (base.RepairableStep)"


@pytest.mark.parametrize("info", registry.STEPS, ids=lambda info: info.key)
def test_each_step_has_its_test_file(info):
    path = ROOT / "tests" / "connectwise" / "checks" / f"test_{info.key}.py"
    assert path.exists(), f"no test file for step {info.key}: {path}"


def test_every_step_module_in_the_package_is_registered():
    registered = {Path(info.module.__file__).name for info in registry.STEPS}
    for path in CHECKS.glob("*.py"):
        tree = ast.parse(path.read_text())
        top = {n.name for n in tree.body if isinstance(n, ast.FunctionDef)}
        if {"needs", "check"} <= top:
            assert path.name in registered, (
                f"{path.name} looks like a step module but is not in registry.STEPS"
            )


def test_the_runner_names_no_step_but_the_connection():
    """Step rules (what blocks a step, which role right a repair needs) live in the step's module."""
    keys = set(registry.STEP_KEYS) - {"connection"}  # the runner checks the connection first, by design
    tree = ast.parse(inspect.getsource(runner))
    named = {n.value for n in ast.walk(tree) if isinstance(n, ast.Constant) and n.value in keys}
    assert named == set()


def test_a_step_blocked_by_choices_says_so_in_its_own_module():
    from connectwise.checks import agreements
    from connectwise.checks.choices import TenantChoices

    assert "company is chosen" in agreements.blocked_reason(TenantChoices())
    assert runner._blocked_reason("agreements", {"connection": _passed()}, TenantChoices()) == (
        agreements.blocked_reason(TenantChoices())
    )


def _passed():
    from connectwise.checks.base import Status, StepOutcome

    return StepOutcome("connection", Status.PASS)
