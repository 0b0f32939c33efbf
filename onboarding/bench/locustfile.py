"""The users of ``manage.py benchmark load`` (a locust file; the benchmark starts locust with it).

Support staff browse the dashboard, its filters, tenant pages and exports, reading each page a few seconds
before the next click (``LOAD_SUPPORT_WAIT``: "min,max" seconds, default "2,5"); partner admins poll their running
check's progress fragment one second after each answer, as the fragment's ``hx-trigger="load delay:1s"`` does. Each
simulated user logs in with a session the benchmark created (``LOAD_SESSIONS``: a JSON file with
``{"support": [sessionid, ...], "partners": [{"session", "url"}, ...], "tenants": [slug, ...]}``), so no
password is involved. Request names group the pages for the table (a URL per tenant would be its own row).

Users are ``FastHttpUser`` (geventhttpclient): the load generator shares the 2 cores with the server it measures,
and python-requests costs several times the CPU per request.
"""

from __future__ import annotations

import itertools
import json
import os
import random

from locust import FastHttpUser, between, constant, task

with open(os.environ["LOAD_SESSIONS"]) as _fh:
    DATA = json.load(_fh)

_support = itertools.cycle(DATA["support"])
_partners = itertools.cycle(DATA["partners"])
SUPPORT_WAIT = tuple(float(x) for x in os.environ.get("LOAD_SUPPORT_WAIT", "2,5").split(","))
STEPS = ("connection", "security_role", "catalog", "setup_tables", "customers", "agreements")


class SupportUser(FastHttpUser):
    """20 of them (``fixed_count``): the distributor's support team."""

    fixed_count = int(os.environ.get("LOAD_SUPPORT_USERS", "20"))
    wait_time = between(*SUPPORT_WAIT)

    def on_start(self) -> None:
        self.headers = {"Cookie": f"sessionid={next(_support)}"}
        self.rng = random.Random()

    def _get(self, url: str, name: str) -> None:
        with self.client.get(url, name=name, headers=self.headers, catch_response=True) as response:
            if response.status_code != 200:
                response.failure(f"HTTP {response.status_code}")

    @task(4)
    def dashboard(self) -> None:
        self._get("/support/", "dashboard list")

    @task(3)
    def filtered(self) -> None:
        step = self.rng.choice(STEPS)
        page = self.rng.randint(1, 20)
        self._get(
            f"/support/?show=not_ready&step={step}&sort=-last_checked&page={page}", "dashboard filtered"
        )

    @task(2)
    def search(self) -> None:
        self._get(
            f"/support/?q=partner+{self.rng.randint(0, 99):02d}&show=stale&sort=readiness", "dashboard search"
        )

    @task(3)
    def tenant_page(self) -> None:
        self._get(f"/support/t/{self.rng.choice(DATA['tenants'])}/", "tenant page")

    @task(1)
    def export_filtered(self) -> None:
        self._get(
            f"/support/export.csv?show=not_ready&step={self.rng.choice(STEPS)}", "csv export (filtered)"
        )

    @task(1)
    def json_api(self) -> None:
        self._get(f"/support/api/tenants.json?page={self.rng.randint(1, 50)}", "json api page")


class PartnerAdmin(FastHttpUser):
    """50 of them: each watches its own tenant's running check, polling the progress fragment every second."""

    fixed_count = int(os.environ.get("LOAD_PARTNER_ADMINS", "50"))
    wait_time = constant(1)

    def on_start(self) -> None:
        partner = next(_partners)
        self.headers = {"Cookie": f"sessionid={partner['session']}", "HX-Request": "true"}
        self.url = partner["url"]

    @task
    def progress(self) -> None:
        with self.client.get(
            self.url, name="progress fragment", headers=self.headers, catch_response=True
        ) as response:
            if response.status_code != 200:
                response.failure(f"HTTP {response.status_code}")
