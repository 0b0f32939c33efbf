"""Serve the ConnectWise sandbox (connectwise/sandbox) on a port, for the demo, end-to-end tests and benchmarks.

    python manage.py cw_sandbox --port 8765 --scenario connectwise/sandbox/scenarios/healthy.json \
        --scenario connectwise/sandbox/scenarios/broken.json

A bad scenario file exits non-zero naming the JSON path of its first problem. Ctrl-C (or SIGTERM) stops it.
"""

from __future__ import annotations

import signal

from django.core.management.base import BaseCommand, CommandError

from connectwise.sandbox import SandboxApp, ScenarioError, load_scenario
from connectwise.sandbox.server import make_server


class Command(BaseCommand):
    help = "Serve the ConnectWise sandbox with one or more scenario files (never in production)."

    def add_arguments(self, parser):
        parser.add_argument("--port", type=int, default=8765)
        parser.add_argument("--host", default="127.0.0.1")
        parser.add_argument(
            "--scenario", action="append", dest="scenarios", required=True, metavar="FILE", help="repeatable"
        )
        parser.add_argument(
            "--client-id",
            action="append",
            dest="client_ids",
            metavar="GUID",
            help="accept only these clientId values (default: any GUID-looking value)",
        )
        parser.add_argument(
            "--latency-ms", type=int, default=None, help="override every scenario's faults.latencyMs"
        )
        parser.add_argument(
            "--prerender",
            action="store_true",
            help="serve each GET answer again as first rendered until a write or reset (for benchmarks)",
        )

    def handle(
        self,
        *args,
        port,
        host,
        scenarios,
        client_ids=None,
        latency_ms=None,
        prerender=False,
        verbosity=1,
        **options,
    ):
        loaded = []
        for path in scenarios:
            try:
                loaded.append(load_scenario(path))
            except ScenarioError as exc:
                raise CommandError(f"Bad scenario {exc}") from None
        try:
            app = SandboxApp(loaded, client_ids=client_ids, prerender=prerender)
        except ValueError as exc:
            raise CommandError(str(exc)) from None
        if latency_ms is not None:
            for tenant in app.tenants.values():
                app.set_faults({**_as_input(tenant.faults), "latencyMs": latency_ms}, tenant.id)
        try:
            server = make_server(app, host, port, verbose=verbosity >= 2)
        except OSError as exc:
            raise CommandError(f"Cannot listen on {host}:{port}: {exc.strerror or exc}") from None

        url = f"http://{host}:{server.server_address[1]}"
        self.stdout.write(f"ConnectWise sandbox at {url}/  (control: {url}/_sandbox/)")
        for tenant in app.tenants.values():
            c = tenant.company
            tables = tenant.tables
            self.stdout.write(
                f"  {c['id']:<12} {c['name']:<24} {url}/{c['codebase']}apis/3.0/  "
                f"{len(tables['company/companies'].rows)} companies, {len(tables['finance/agreements'].rows)} "
                f"agreements, members: {', '.join(m['identifier'] for m in tenant.scenario.api_members)}  "
                f"[{tenant.scenario.source}]"
            )
        self.stdout.write("Quit with CONTROL-C.")
        self.stdout.flush()

        def stop(signum, frame):
            raise KeyboardInterrupt

        previous = signal.signal(signal.SIGTERM, stop)
        try:
            server.serve_forever(poll_interval=0.2)
        except KeyboardInterrupt:
            self.stdout.write("Sandbox stopped.")
        finally:
            signal.signal(signal.SIGTERM, previous)
            server.server_close()


def _as_input(faults: dict) -> dict:
    """Parsed faults back to the input form ``set_faults`` takes (the queue is not replayed)."""
    return {k: v for k, v in faults.items() if k != "queue"}
