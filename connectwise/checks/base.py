"""Plain data that checks return: a step outcome with its findings. No Django, no database."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from enum import StrEnum
from typing import Any


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
