"""The steps in wizard order (six required, one advisory).

Adding a step is one module in this package (a ``base.StepModule``; a ``base.RepairableStep`` when it repairs),
one ``StepInfo`` line here (and its name in the import below) and one test file ``tests/connectwise/checks/test_<key>.py``;
``tests/connectwise/checks/test_registry_contract.py`` enforces it. Nothing else names a step's rules.
"""

from __future__ import annotations

from dataclasses import dataclass
from types import ModuleType

from . import agreements, catalog, connection, customers, existing_billing, security_role, setup_tables


@dataclass(frozen=True)
class StepInfo:
    """One wizard step: its key, its title as the partner sees it, its module and the steps it requires."""

    key: str
    title: str
    module: ModuleType  # the step module: a base.StepModule (base.RepairableStep when it has plan_operations)
    requires: tuple[str, ...]  # steps that must be ok (pass/warn) first, else this step is blocked
    advisory: bool = False  # True: its status never decides readiness (PRODUCT.md step 7)


STEPS: tuple[StepInfo, ...] = (
    StepInfo("connection", "Connection", connection, ()),
    StepInfo("security_role", "Security role", security_role, ("connection",)),
    StepInfo("catalog", "Product catalog", catalog, ("connection",)),
    StepInfo("setup_tables", "Setup tables", setup_tables, ("connection",)),
    StepInfo("customers", "Customers", customers, ("connection",)),
    StepInfo("agreements", "Agreements", agreements, ("connection",)),
    StepInfo("existing_billing", "Seats billed today", existing_billing, ("connection",), advisory=True),
)
STEP_KEYS: tuple[str, ...] = tuple(s.key for s in STEPS)
# The steps whose status decides whether a tenant is ready (every step but the advisory ones).
READINESS_KEYS: tuple[str, ...] = tuple(s.key for s in STEPS if not s.advisory)
STEP_TITLES: dict[str, str] = {s.key: s.title for s in STEPS}


def get_step(key: str) -> StepInfo:
    """The step ``key``; raises KeyError naming the known keys."""
    for s in STEPS:
        if s.key == key:
            return s
    raise KeyError(f"unknown step {key!r}; steps are: {', '.join(STEP_KEYS)}")


def step_module(key: str) -> ModuleType:
    """The module of step ``key`` (a ``base.StepModule``); raises KeyError for an unknown key."""
    return get_step(key).module
