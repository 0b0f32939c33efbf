"""Plain data that checks return: a step outcome with its findings. No Django, no database."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass, field
from enum import StrEnum
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from .context import RunContext


class Status(StrEnum):
    PASS = "pass"
    WARN = "warn"
    FAIL = "fail"
    ERROR = "error"  # could not check
    BLOCKED = "blocked"  # an earlier step must pass first


class Severity(StrEnum):
    ERROR = "error"
    WARNING = "warning"
    INFO = "info"


OK_STATUSES = frozenset({Status.PASS, Status.WARN})


@dataclass(frozen=True)
class Finding:
    code: str
    severity: Severity
    subject: str  # the ConnectWise record it is about, e.g. 'Product "misc-seat" (id 12)'
    explanation: str  # plain language, for a partner admin
    fix: str  # the ConnectWise click path to fix it by hand
    repairable: bool = False
    record: dict[str, Any] | None = None  # {"path": "procurement/catalog", "id": 12} when there is one
    data: dict[str, Any] = field(default_factory=dict)  # extra facts a repair or the UI needs

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["severity"] = str(self.severity)
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Finding:
        return cls(**{**d, "severity": Severity(d["severity"])})


@dataclass
class StepOutcome:
    key: str
    status: Status
    findings: list[Finding] = field(default_factory=list)
    summary: str = ""
    facts: dict[str, Any] = field(default_factory=dict)  # what the step saw, for the UI (counts, names)

    @classmethod
    def from_findings(cls, key: str, findings: list[Finding], summary: str = "", **facts: Any) -> StepOutcome:
        """pass when there is nothing, warn when only warnings/info, fail on any error-severity finding."""
        if any(f.severity == Severity.ERROR for f in findings):
            status = Status.FAIL
        elif any(f.severity == Severity.WARNING for f in findings):
            status = Status.WARN
        else:
            status = Status.PASS
        return cls(key=key, status=status, findings=findings, summary=summary, facts=facts)


# -------------------------------------------------------------------------------------------------- the seams
class ConnectWiseApi(Protocol):
    """What the checks and repairs ask of a ConnectWise client (``connectwise.client.ConnectWiseClient``; tests may
    pass a fake with these methods). Paths are relative to ``.../apis/3.0/``; errors are
    ``connectwise.errors.ConnectWiseError`` subclasses."""

    def discover(self) -> Any: ...

    def system_info(self) -> dict[str, Any]: ...

    def get(self, path: str, **params: Any) -> Any: ...

    def list(self, path: str, **params: Any) -> list[dict]: ...

    def count(self, path: str, conditions: str | None = None, **params: Any) -> int: ...

    def create(self, path: str, body: dict) -> dict: ...

    def patch(self, path: str, operations: list[dict]) -> dict: ...

    def map_concurrent(self, fn: Callable[[Any], Any], items: Iterable[Any]) -> list: ...


WriteNeed = tuple[tuple[str, str], str]  # ((module, function), "addLevel" | "editLevel") of the security role


class StepModule(Protocol):
    """A step module ``connectwise.checks.<key>``, listed once in ``registry.STEPS``.

    ``needs(choices)``: the keys of ``context.RESOURCES`` its check reads (prefetched once per run);
    ``check(ctx)``: the outcome (reads only; a failed read may raise, the runner reports it). A step that is
    blocked by the partner's choices (not only by its required steps) also defines
    ``blocked_reason(choices) -> str | None``.
    """

    KEY: str

    def needs(self, choices: Any) -> frozenset[str]: ...

    def check(self, ctx: RunContext) -> StepOutcome: ...


class RepairableStep(StepModule, Protocol):
    """A step whose findings can be repaired: ``plan_operations(ctx, outcome, **options)`` turns its repairable
    findings into ``operations.PlannedOperation``s; ``write_needs(finding)`` names the security-role right each
    repair's write needs (``runner.limit_repairs_to_role`` offers only what the role allows), None when it needs
    none."""

    def plan_operations(self, ctx: RunContext, outcome: StepOutcome, **options: Any) -> list: ...

    def write_needs(self, finding: Finding) -> WriteNeed | None: ...
