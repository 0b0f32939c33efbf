"""Benchmarks behind the product's non-functional targets, run by ``manage.py benchmark NAME [options] [--json]``.

Each benchmark is a module here (``NAMES``: ``verify``, ``dashboard``, ``soak``, ``fleet``, ``load``) with three
functions (the other modules are their parts: ``measure``, ``sandbox_process``, ``verify_*``, ``soak_*``,
``dashboard_data``, ``workers``):

- ``add_arguments(parser)``: its own options (the command adds ``--json`` to every benchmark; do not add it);
- ``run(options: dict) -> dict``: do the work and return the figures as JSON-serialisable data;
- ``print_table(result: dict, write=print)``: the same figures as a table for people.

Benchmarks never touch the main database: they build their data in a scratch database (see ``scratch_database``).
"""

from __future__ import annotations

import os
import statistics
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager

from django.db import DEFAULT_DB_ALIAS, connections

NAMES = ("verify", "dashboard", "soak", "fleet", "load")


@contextmanager
def scratch_database(alias: str = DEFAULT_DB_ALIAS) -> Iterator[str]:
    """Point the connection at a new, migrated, empty database and drop it afterwards.

    SQLite: a temporary file. PostgreSQL: ``<name>_bench`` next to the main database (created through the
    maintenance database, like Django's test databases). The main database is never written to.
    """
    conn = connections[alias]
    settings_dict = conn.settings_dict
    old_name, old_test = settings_dict["NAME"], dict(settings_dict.get("TEST") or {})
    tmpdir = None
    if conn.vendor == "sqlite":
        tmpdir = tempfile.mkdtemp(prefix="bench-")
        scratch = os.path.join(tmpdir, "bench.sqlite3")
    else:
        scratch = f"{old_name}_bench"
    settings_dict["TEST"] = {**old_test, "NAME": scratch}
    conn.close()
    try:
        conn.creation.create_test_db(verbosity=0, autoclobber=True, serialize=False, keepdb=False)
        try:
            yield settings_dict["NAME"]
        finally:
            conn.creation.destroy_test_db(old_name, verbosity=0, keepdb=False)
    finally:
        settings_dict["NAME"], settings_dict["TEST"] = old_name, old_test
        conn.close()
        if tmpdir:
            for name in os.listdir(tmpdir):
                os.remove(os.path.join(tmpdir, name))
            os.rmdir(tmpdir)


def database_url(alias: str = DEFAULT_DB_ALIAS) -> str:
    """The ``DATABASE_URL`` of the database the connection points at now (e.g. the scratch one), for a child
    process that must use the same (gunicorn in ``benchmark load``, the worker side of ``benchmark verify``)."""
    db = connections[alias].settings_dict
    if db["ENGINE"].endswith("sqlite3"):
        return f"sqlite:///{db['NAME']}"
    user = db.get("USER") or ""
    password = f":{db['PASSWORD']}" if db.get("PASSWORD") else ""
    auth = f"{user}{password}@" if user else ""
    host = f"{db.get('HOST') or '127.0.0.1'}:{db.get('PORT') or 5432}"
    return f"postgres://{auth}{host}/{db['NAME']}"


def timed(fn: Callable[[], object], repeat: int) -> tuple[float, list[float]]:
    """Median wall time in milliseconds of ``repeat`` calls, and every sample."""
    samples = []
    for _ in range(repeat):
        started = time.perf_counter()
        fn()
        samples.append((time.perf_counter() - started) * 1000)
    return statistics.median(samples), samples
