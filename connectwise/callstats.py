"""What a client records about its API use: calls, retries, errors, time on the wire, calls per endpoint.

``CallStats`` is what a check run stores about its calls and what the benchmarks read (``levels()``, the round
trips on the critical path); ``path_template`` names an endpoint with its ids as ``{id}``.
"""

from __future__ import annotations

import re
import threading
from dataclasses import dataclass, field
from typing import Any

_NUMERIC_SEGMENT = re.compile(r"\d+")


@dataclass
class CallStats:
    """What a run stores about its API use. Thread-safe; ``ConnectWiseClient.stats`` returns a snapshot.

    ``calls``: every HTTP attempt (retries and discovery included); ``retries``: attempts that repeated an
    earlier one; ``errors``: attempts that ended without a 2xx (error status, redirect, connection failure or
    timeout); ``elapsed_ms``: time on the wire summed over attempts (more than wall time when concurrent);
    ``by_endpoint``: attempts per ``(method, path template)`` with ids as ``{id}``; ``intervals``: each attempt's
    ``(sent, answered)`` on ``time.perf_counter``'s clock (seconds), from which ``levels()`` counts round trips.
    """

    calls: int = 0
    retries: int = 0
    errors: int = 0
    elapsed_ms: float = 0.0
    by_endpoint: dict[tuple[str, str], int] = field(default_factory=dict)
    intervals: list[tuple[float, float]] = field(default_factory=list, repr=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, init=False, repr=False, compare=False)

    def record_call(
        self,
        method: str,
        template: str,
        elapsed_ms: float,
        *,
        failed: bool,
        interval: tuple[float, float] | None = None,
    ) -> None:
        with self._lock:
            self.calls += 1
            self.errors += int(failed)
            self.elapsed_ms += elapsed_ms
            key = (method, template)
            self.by_endpoint[key] = self.by_endpoint.get(key, 0) + 1
            if interval is not None:
                self.intervals.append(interval)

    def levels(self) -> int:
        """Round trips on the critical path, as observed: the longest chain of attempts in which each one was sent
        only after the one before it was answered (0 without calls). Attempts that overlap in time count as one
        level, so a wave of concurrent reads is one level and a read that waited for another's answer is the next
        (an attempt held back by the in-flight bound counts as a level too: it did wait)."""
        with self._lock:
            spans = sorted(self.intervals, key=lambda iv: iv[1])
        depth: list[int] = []
        ends: list[float] = []
        for sent, answered in spans:
            best = 0
            for end, d in zip(ends, depth, strict=True):
                if end <= sent and d > best:
                    best = d
            ends.append(answered)
            depth.append(best + 1)
        return max(depth, default=0)

    def record_retry(self) -> None:
        with self._lock:
            self.retries += 1

    def snapshot(self) -> CallStats:
        with self._lock:
            return CallStats(
                self.calls,
                self.retries,
                self.errors,
                self.elapsed_ms,
                dict(self.by_endpoint),
                list(self.intervals),
            )

    def as_dict(self) -> dict[str, Any]:
        s = self.snapshot()
        return {
            "calls": s.calls,
            "retries": s.retries,
            "errors": s.errors,
            "elapsed_ms": round(s.elapsed_ms, 1),
            "by_endpoint": {f"{m} {p}": n for (m, p), n in sorted(s.by_endpoint.items())},
        }


def path_template(path: str) -> str:
    """``company/companies/5/notes?x=1`` -> ``company/companies/{id}/notes`` (for counting, not for requests)."""
    path = path.split("?", 1)[0].strip("/")
    return "/".join("{id}" if _NUMERIC_SEGMENT.fullmatch(seg) else seg for seg in path.split("/"))
