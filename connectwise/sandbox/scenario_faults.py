"""The ``faults`` of a scenario: injected latency, error rates, queued faults, slow bodies (``parse_faults``).

``sandbox.faults`` applies what this validates; the keys and their defaults are in ``parse_faults``.
"""

from __future__ import annotations

from typing import Any

from .scenario_values import as_list, as_object, child, fail, flag, number

FAULT_KINDS = ("429", "500", "503", "reset", "resetAfter", "slow")


def parse_faults(value: Any, path: str = "$.faults") -> dict[str, Any]:
    """Faults, with defaults. Keys (all optional):

    - ``latencyMs``: sleep before every API and discovery answer.
    - ``seed``: the seed of the per-scenario ``random.Random`` that draws one number per API request.
    - ``rates``: probability per request of ``429`` (with ``Retry-After``), ``500``, ``503`` (with ``Retry-After``),
      ``reset`` (connection closed abruptly before the request is handled), ``resetAfter`` (the request is handled,
      a write applied, then the connection is closed without an answer) and ``slow`` (a slow body); their sum
      must not exceed 1.
    - ``slowBodyMs``: how long a slow body takes to trickle out (in 4 chunks). When set without ``rates.slow``,
      every API response is slow.
    - ``retryAfterSeconds``: the ``Retry-After`` value of 429 and 503 (default 1).
    - ``paths``: only requests whose API path starts with one of these prefixes get faults (latency still applies).
    - ``methods``: only requests with one of these HTTP methods get faults (e.g. ``["POST"]`` to hit creates
      but not the look-ups before them).
    - ``queue``: fault kinds forced, in order, on the next API requests before any random draw (e.g.
      ``["429", "reset"]``): exact sequences for retry tests.
    - ``includeDiscovery``: also draw faults for ``/login/companyinfo`` (default false).
    - ``errorBody``: the body of the ``500`` and ``503`` faults instead of the sandbox's own, e.g.
      ``{"code": "ConnectWiseApi", "message": "String was not recognized as a valid Boolean."}`` (how
      ConnectWise answers, on every try, a list whose data it cannot read; issue 11). With ``paths`` and
      ``rates: {"500": 1}`` a path answers that error every time.
    """
    obj = as_object(value, path)
    known = {
        "latencyMs",
        "seed",
        "rates",
        "slowBodyMs",
        "retryAfterSeconds",
        "paths",
        "methods",
        "queue",
        "includeDiscovery",
        "errorBody",
        "company",
    }
    for key in obj:
        if key not in known and not key.startswith("_"):
            fail(child(path, key), f"unknown key (expected one of {', '.join(sorted(known - {'company'}))})")
    rates_in = as_object(obj.get("rates") or {}, child(path, "rates"))
    rates: dict[str, float] = {}
    for key in rates_in:
        if key not in FAULT_KINDS:
            fail(
                child(child(path, "rates"), key), f"unknown fault (expected one of {', '.join(FAULT_KINDS)})"
            )
        rates[key] = float(number(rates_in, key, child(path, "rates"), 0.0, 0.0, 1.0))
    if sum(v for k, v in rates.items()) > 1.0 + 1e-9:
        fail(child(path, "rates"), "the rates add up to more than 1")
    seed = obj.get("seed", 1)
    if isinstance(seed, bool) or not isinstance(seed, int | str):
        fail(child(path, "seed"), "must be an integer or a string")
    paths = obj.get("paths")
    if paths is not None:
        for i, prefix in enumerate(as_list(paths, child(path, "paths"))):
            if not isinstance(prefix, str):
                fail(child(child(path, "paths"), i), "must be a string")
        paths = [p.strip("/") for p in paths]
    methods = obj.get("methods")
    if methods is not None:
        methods = [str(m).upper() for m in as_list(methods, child(path, "methods"))]
        for i, m in enumerate(methods):
            if m not in {"GET", "POST", "PUT", "PATCH", "DELETE"}:
                fail(child(child(path, "methods"), i), "must be GET, POST, PUT, PATCH or DELETE")
    queue = []
    for i, kind in enumerate(as_list(obj.get("queue") or [], child(path, "queue"))):
        kind = str(kind)
        if kind not in FAULT_KINDS:
            fail(child(child(path, "queue"), i), f"unknown fault (expected one of {', '.join(FAULT_KINDS)})")
        queue.append(kind)
    slow_ms = number(obj, "slowBodyMs", path, 0, 0, 600_000)
    if slow_ms and "slow" not in rates:
        rates["slow"] = 1.0 - sum(rates.values())
    for kind in FAULT_KINDS:
        rates.setdefault(kind, 0.0)
    return {
        "latencyMs": number(obj, "latencyMs", path, 0, 0, 600_000),
        "seed": seed,
        "rates": rates,
        "slowBodyMs": slow_ms,
        "retryAfterSeconds": number(obj, "retryAfterSeconds", path, 1, 0, 3600),
        "paths": paths,
        "methods": methods,
        "queue": queue,
        "includeDiscovery": flag(obj, "includeDiscovery", path, False),
        "errorBody": _error_body(obj.get("errorBody"), child(path, "errorBody")),
    }


def _error_body(value: Any, path: str) -> dict[str, str] | None:
    """``{"code": str, "message": str}`` (both required, non-empty), or None when absent."""
    if value is None:
        return None
    obj = as_object(value, path)
    for key in obj:
        if key not in ("code", "message"):
            fail(child(path, key), "unknown key (expected code, message)")
    for key in ("code", "message"):
        if not isinstance(obj.get(key), str) or not obj[key].strip():
            fail(child(path, key), "must be a non-empty string")
    return {"code": obj["code"], "message": obj["message"]}
