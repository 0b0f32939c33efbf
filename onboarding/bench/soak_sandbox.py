"""``benchmark soak``'s sandbox: the ConnectWise sandbox counting the faults it injects and the creates it acts on
per created name (``SoakSandbox``), and the agreements per company of a tenant (``agreement_duplicates``): what
tells a record created twice."""

from __future__ import annotations

import threading
from collections import Counter

from connectwise.sandbox import SandboxApp, SandboxReset
from connectwise.sandbox.app import ApiError


class SoakSandbox(SandboxApp):
    """The sandbox, counting the faults it injects and the creates it acts on, per created name."""

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.counts_lock = threading.Lock()
        self.faults_injected: Counter[str] = Counter()
        self.creates: Counter[tuple] = Counter()  # (cycle, company, path, name...) -> creates acted on
        self.object_exists = 0  # creates refused because the record existed (our re-query missed it)
        self.cycle = 0  # every cycle starts from the scenario again, so a name may be created once per cycle

    def _faults(self, *args, **kwargs):
        try:
            slow = super()._faults(*args, **kwargs)
        except ApiError as exc:
            self._count_fault(str(exc.status))
            raise
        except SandboxReset:
            self._count_fault("reset")
            raise
        if slow < 0:
            self._count_fault("resetAfter")
        elif slow > 0:
            self._count_fault("slow")
        return slow

    def _count_fault(self, kind: str) -> None:
        with self.counts_lock:
            self.faults_injected[kind] += 1

    def _create(self, request, table):
        body = request.body_json()
        request.body_json = lambda: body  # the real handler reads the body again
        key = (f"cycle {self.cycle}", request.tenant.id, table.spec.path, *_create_key(body))
        try:
            response = super()._create(request, table)
        except ApiError as exc:
            if "ObjectExists" in str(exc.body):
                with self.counts_lock:
                    self.object_exists += 1
            raise
        with self.counts_lock:
            self.creates[key] += 1
        return response

    def duplicates(self) -> dict[str, int]:
        with self.counts_lock:
            return {" / ".join(map(str, k)): n for k, n in self.creates.items() if n > 1}


def _create_key(body) -> tuple:
    if not isinstance(body, dict):
        return ("?",)
    name = body.get("identifier") or body.get("name") or "?"
    parent = [body[k].get("id") for k in ("company", "category") if isinstance(body.get(k), dict)]
    return (*parent, name)


def agreement_duplicates(app: SandboxApp, company_id: str) -> dict[int, int]:
    """Company id -> number of agreements, for every company of the tenant with more than one."""
    per_company = Counter(
        a["company"]["id"] for a in app.tenant(company_id).tables["finance/agreements"].rows.values()
    )
    return {cid: n for cid, n in per_company.items() if n > 1}
