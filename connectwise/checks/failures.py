"""A step whose reads failed: the ``error`` outcome it reports, in words a person can act on.

Used by the runner (a check that raised) and by steps that keep part of their findings when one read fails
(agreements, existing_billing). A leaf of the step modules: it imports no step module.
"""

from __future__ import annotations

from connectwise.errors import ConnectWiseError, Forbidden, RateLimited, ServerError

from . import codes
from .base import Finding, Severity, Status, StepOutcome
from .context import RESOURCES, Resource


def read_error(key: str, exc: ConnectWiseError, resource: Resource | None, path: str = "") -> StepOutcome:
    """The ``error`` outcome of step ``key`` for a read that failed with ``exc``: ``step.read_forbidden`` naming
    the role right for a 403, else ``step.check_failed`` explained by ``explain_failure``. ``resource`` is the
    ``context.RESOURCES`` entry read (None when unknown: ``path`` is named instead)."""
    path = resource.path if resource else path
    if isinstance(exc, Forbidden):
        role = resource.needed_role if resource else "the Inquire level for this data"
        where = (
            f"{resource.role_function} > set Inquire Level to All"
            + (
                f', and in the "customize" list of Table Setup allow "{resource.customize_item}"'
                if resource.customize_item
                else ""
            )
            if resource
            else "the module that holds this data > set Inquire Level to All"
        )
        finding = Finding(
            codes.STEP_READ_FORBIDDEN,
            Severity.ERROR,
            subject=f"Read of {path} refused",
            explanation=(
                f"ConnectWise refused to let the API member read {path} (HTTP 403), so this step could not be "
                f"checked. The security role is missing {role}."
            ),
            fix=(
                "In ConnectWise go to System > Security Roles > open the API member's security role > "
                f"{where} > Save; then run the check again."
            ),
            data={"path": path, "role_function": role, "status": exc.status, "error": exc.detail()},
        )
        return StepOutcome(
            key, Status.ERROR, [finding], summary=f"Could not check: the role is missing {role}."
        )
    explanation, fix, summary = explain_failure(exc)
    finding = Finding(
        codes.STEP_CHECK_FAILED,
        Severity.ERROR,
        subject=f"Read of {path}" if path else "ConnectWise",
        explanation=explanation,
        fix=fix,
        data={"path": path, "error": exc.detail(), "status": exc.status, "transient": exc.transient},
    )
    return StepOutcome(key, Status.ERROR, [finding], summary=summary)


def explain_failure(exc: ConnectWiseError) -> tuple[str, str, str]:
    """``(explanation, fix, summary)`` for a check that ConnectWise's answer stopped, in words a person can act on.

    - Rate limited for longer than the client may wait (429 with ``Retry-After``): "rate limited by ConnectWise
      for N s"; the run can be retried after that and the scheduled checks wait for it (``onboarding.runs``).
    - A 5xx that carries ConnectWise's own ``message`` and still failed after the client's retries is not called
      temporary: ConnectWise fails on this data (issue 11 item 6: ``500 {"code": "ConnectWiseApi", "message":
      "String was not recognized as a valid Boolean."}`` on every try), so the text says to raise it with
      ConnectWise support, quoting the message, the request and its request id.
    - Other errors: what happened, with ConnectWise's message when there is one.
    """
    detail = exc.detail()
    request = " ".join(p for p in (detail["method"], detail["path"]) if p)
    rid = f", request id {detail['request_id']}" if detail["request_id"] else ""
    said = f' ConnectWise said: "{exc.cw_message}".' if exc.cw_message else ""
    status = f", HTTP {exc.status}" if exc.status else ""
    if isinstance(exc, RateLimited) and detail["retry_after"]:
        wait = detail["retry_after"]
        return (
            f"The check stopped: rate limited by ConnectWise for {wait} s (HTTP 429 on {request}{rid}). "
            "We do not retry before ConnectWise allows it; nothing was changed.",
            f"Run the check again after {wait} s; scheduled checks of this tenant wait until then. If this happens "
            "often, other integrations may be using the same API member's request limit.",
            f"Could not check: rate limited by ConnectWise for {wait} s.",
        )
    if isinstance(exc, ServerError) and exc.cw_message and exc.attempts > 1:
        code = f" ({exc.code})" if exc.code else ""
        return (
            f"ConnectWise failed on {request} with HTTP {exc.status} on each of {exc.attempts} tries, with its "
            f'own error message: "{exc.cw_message}"{code}. An error that repeats with a message like this '
            "comes from this data in your ConnectWise, not from a passing outage: waiting will not fix it. "
            "Nothing was changed.",
            f'Raise it with ConnectWise support, quoting the message "{exc.cw_message}", the request '
            f"{request}{rid} and the time of this check. Run the check again once they have fixed the data.",
            f"Could not check: ConnectWise fails on this data (HTTP {exc.status}).",
        )
    if exc.retry_after_seconds is not None and exc.retry_after_seconds > 0:
        wait = round(exc.retry_after_seconds)
        return (
            f"ConnectWise is unavailable and asked us to wait {wait} s ({type(exc).__name__}{status} on "
            f"{request}{rid}).{said} Nothing was changed.",
            f"Run the check again after {wait} s; scheduled checks of this tenant wait until then.",
            f"Could not check: ConnectWise asked us to wait {wait} s.",
        )
    return (
        f"ConnectWise did not answer the check ({type(exc).__name__}{status}"
        f"{' on ' + request if request else ''}{rid}).{said} "
        + (
            "This is usually temporary; nothing was changed."
            if exc.transient
            else "Nothing was changed; the details are below."
        ),
        "Run the check again in a few minutes. If it keeps failing, contact our support team"
        + (", quoting ConnectWise's message and the request id." if exc.cw_message or rid else "."),
        "Could not check: ConnectWise did not answer.",
    )


def resource_for_path(path: str) -> Resource | None:
    """The ``RESOURCES`` entry whose path is the longest prefix of ``path`` (None when none is)."""
    path = path.strip("/")
    best = None
    for resource in RESOURCES.values():
        if path.startswith(resource.path) and (best is None or len(resource.path) > len(best.path)):
            best = resource
    return best
