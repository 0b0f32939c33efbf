"""``manage.py benchmark verify|dashboard|soak [options] [--json]``: the benchmarks behind the non-functional
targets. Each is a module in onboarding/bench/ (see its docstring for the three functions it provides); this
command only dispatches, prints the table for people, or one JSON object with ``--json``.
"""

from __future__ import annotations

import inspect
import json
from importlib import import_module

from django.core.management.base import BaseCommand, CommandError

from onboarding.bench import NAMES


def _load(name: str):
    """The benchmark's module, or None when it is not part of this build yet."""
    module = f"onboarding.bench.{name}"
    try:
        return import_module(module)
    except ModuleNotFoundError as exc:
        if exc.name == module:
            return None
        raise  # the module exists but something it imports is missing: say so


def _not_available(name: str) -> str:
    available = ", ".join(n for n in NAMES if _load(n) is not None) or "none"
    return (
        f"The {name!r} benchmark is not available in this build (onboarding/bench/{name}.py is missing). "
        f"Available: {available}."
    )


class Command(BaseCommand):
    help = "Run a benchmark (verify, dashboard, soak, fleet or load) and print its figures; --json prints one JSON object."

    def add_arguments(self, parser):
        subparsers = parser.add_subparsers(
            dest="benchmark", metavar="{" + ",".join(NAMES) + "}", required=True
        )
        for name in NAMES:
            module = _load(name)
            sub = subparsers.add_parser(
                name, help=(module.__doc__ or "").strip().splitlines()[0] if module else "(not available)"
            )
            if module is not None:
                module.add_arguments(sub)
            if not any("--json" in action.option_strings for action in sub._actions):
                sub.add_argument(
                    "--json", action="store_true", help="Print one JSON object instead of a table."
                )

    def run_from_argv(self, argv):
        # Name a missing benchmark before argparse complains about the options it would have accepted.
        if len(argv) > 2 and argv[2] in NAMES and _load(argv[2]) is None:
            self.stderr.write(f"CommandError: {_not_available(argv[2])}")
            raise SystemExit(1)
        super().run_from_argv(argv)

    def handle(self, *args, **options):
        name = options["benchmark"]
        module = _load(name)
        if module is None:
            raise CommandError(_not_available(name))
        try:
            result = module.run(options)
        except ValueError as exc:
            raise CommandError(str(exc)) from None
        if options.get("json"):
            self.stdout.write(json.dumps(result, default=str))
        elif "write" in inspect.signature(module.print_table).parameters:
            module.print_table(result, write=self.stdout.write)
        else:  # print_table(result) that prints to sys.stdout itself
            module.print_table(result)
