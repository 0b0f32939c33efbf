"""Make a process import only what the deployed image installs (``Dockerfile``: ``pip install .``, no extras).

A development virtualenv also holds the ``[test]`` extras and what they pull in (schemathesis brings rich and
pygments, which httpx then loads for its command line), and a worker started there holds several megabytes a
deployed worker never loads. ``hide_undeployed()`` installs an import finder that answers "no module named ..."
for every top-level module whose distributions are all outside the project's runtime dependencies (followed through
their own requirements and the extras they ask for), as if they were not installed. ``benchmark verify`` measures
its worker's resident set that way; importing one of them from the product would then fail, as it would when
deployed.
"""

from __future__ import annotations

import importlib.abc
import sys
from importlib import metadata

from packaging.markers import default_environment
from packaging.requirements import InvalidRequirement, Requirement
from packaging.utils import canonicalize_name

PROJECT = "cw-onboarding"  # pyproject.toml [project] name
# What the image's base (python:3.11-slim) installs besides the project: never hidden.
IN_THE_BASE_IMAGE = frozenset({"pip", "setuptools", "pkg_resources", "_distutils_hack", "wheel"})


def runtime_distributions(project: str = PROJECT) -> set[str]:
    """Canonical names of the distributions a plain ``pip install <project>`` installs: the project, its
    requirements without an extra, and theirs (with the extras each asks for), as installed here. Raises
    ``metadata.PackageNotFoundError`` when the project is not installed."""
    seen: set[str] = set()
    walked: set[tuple[str, frozenset[str]]] = set()  # each distribution once per set of extras asked for
    todo: list[tuple[str, frozenset[str]]] = [(project, frozenset())]
    environment = default_environment()
    while todo:
        name, extras = todo.pop()
        key = canonicalize_name(name)
        if (key, extras) in walked:
            continue
        walked.add((key, extras))
        try:
            dist = metadata.distribution(name)
        except metadata.PackageNotFoundError:
            if name == project:
                raise
            continue  # a requirement for another platform or Python, not installed here
        seen.add(key)
        for text in dist.requires or []:
            try:
                requirement = Requirement(text)
            except InvalidRequirement:
                continue
            marker = requirement.marker
            if marker is not None and not any(
                marker.evaluate({**environment, "extra": extra}) for extra in (extras or {""})
            ):
                continue
            todo.append((requirement.name, frozenset(requirement.extras)))
    return seen


def undeployed_modules(project: str = PROJECT) -> set[str]:
    """Top-level module names installed here that only distributions outside ``runtime_distributions`` provide."""
    keep = runtime_distributions(project)
    hidden = set()
    for module, distributions in metadata.packages_distributions().items():
        if not any(canonicalize_name(d) in keep for d in distributions):
            hidden.add(module)
    return hidden


class _Undeployed(importlib.abc.MetaPathFinder):
    def __init__(self, modules: set[str]) -> None:
        self.modules = modules

    def find_spec(self, fullname, path=None, target=None):
        if fullname.partition(".")[0] in self.modules:
            raise ModuleNotFoundError(
                f"No module named {fullname!r} (not installed when deployed)", name=fullname
            )
        return None


def hide_undeployed(project: str = PROJECT) -> set[str]:
    """Install the finder first on ``sys.meta_path``; returns the module names it hides. Call it before the
    product is imported (modules already imported stay)."""
    modules = undeployed_modules(project) - IN_THE_BASE_IMAGE
    sys.meta_path.insert(0, _Undeployed(modules))
    return modules
