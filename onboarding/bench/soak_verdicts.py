"""``benchmark soak``'s verdicts: a verification under faults compared with the fault-free baseline's findings
(``run_findings``): the same findings, a clear error, or wrong (``classify``), and what differs (``diff``)."""

from __future__ import annotations

from connectwise.checks import codes

from ..models import CheckRun


def run_findings(run: CheckRun) -> dict[str, tuple[str, frozenset]]:
    """``{step key: (status, {(code, subject)})}`` of a stored run."""
    return {
        r.key: (r.status, frozenset((f["code"], f["subject"]) for f in r.findings)) for r in run.results.all()
    }


def classify(run: CheckRun, baseline: dict) -> str:
    """Classify a run: "same" (the baseline findings), "error" (said clearly it could not check) or "wrong"."""
    if run.status == CheckRun.Status.ERROR:
        return "error"
    got = run_findings(run)
    if got == baseline:
        return "same"
    clear = {codes.STEP_CHECK_FAILED, codes.STEP_READ_FORBIDDEN, codes.CONNECTION_UNREACHABLE}
    for key, (status, findings) in got.items():
        if (status, findings) == baseline.get(key):
            continue
        if status == "blocked":  # blocked by an earlier step that could not be checked
            continue
        if status == "error" and {code for code, _ in findings} & clear:
            continue
        if key == "connection" and {code for code, _ in findings} & clear:
            continue
        return "wrong"
    return "error"


def diff(run: CheckRun, baseline: dict) -> dict:
    """``{step key: {"status", "extra", "missing"}}`` for every step whose findings differ from ``baseline``."""
    got = run_findings(run)
    return {
        key: {
            "status": got[key][0],
            "extra": sorted(got[key][1] - base[1]),
            "missing": sorted(base[1] - got[key][1]),
        }
        for key, base in baseline.items()
        if key in got and got[key] != base
    }
