"""The steps in wizard order (six required, one advisory). Adding a step: one module in this package and one line here."""

from __future__ import annotations

from dataclasses import dataclass
from importlib import import_module


@dataclass(frozen=True)
class StepInfo:
    key: str
    title: str
    module: str  # connectwise.checks.<module> provides check() and, where repairable, build_plan()
    requires: tuple[str, ...]  # steps that must be ok (pass/warn) first, else this step is blocked
    advisory: bool = False  # True: its status never decides readiness (PRODUCT.md step 7)


STEPS: tuple[StepInfo, ...] = (
    StepInfo("connection", "Connection", "connection", ()),
    StepInfo("security_role", "Security role", "security_role", ("connection",)),
    StepInfo("catalog", "Product catalog", "catalog", ("connection",)),
    StepInfo("setup_tables", "Setup tables", "setup_tables", ("connection",)),
    StepInfo("customers", "Customers", "customers", ("connection",)),
    StepInfo("agreements", "Agreements", "agreements", ("connection",)),
    StepInfo("existing_billing", "Seats billed today", "existing_billing", ("connection",), advisory=True),
)
STEP_KEYS: tuple[str, ...] = tuple(s.key for s in STEPS)
# The steps whose status decides whether a tenant is ready (every step but the advisory ones).
READINESS_KEYS: tuple[str, ...] = tuple(s.key for s in STEPS if not s.advisory)
STEP_TITLES: dict[str, str] = {s.key: s.title for s in STEPS}


def get_step(key: str) -> StepInfo:
    for s in STEPS:
        if s.key == key:
            return s
    raise KeyError(f"unknown step {key!r}; steps are: {', '.join(STEP_KEYS)}")


def step_module(key: str):
    return import_module(f"connectwise.checks.{get_step(key).module}")
