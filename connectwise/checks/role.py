"""What the API member's security role allows, read from the run's own rows of ``system/mySecurity`` and
``system/mySecurity/customizeItems`` (docs/connectwise/REFERENCE.md §2): the Access Allowed lists and the Inquire
level "My" note.

A leaf of the step modules: the security_role step judges the role with it, and the customers and agreements steps
use it to explain what the role hides. It imports no step module.
"""

from __future__ import annotations

from functools import lru_cache

from .context import RunContext

# "customize" > "Access Allowed" lists, by their display names (what the partner sees next to the function).
# customizeIdentifier is an enum in the SPEC (MySecurityCustomizeItem, docs/connectwise/REFERENCE.md §2):
# SystemTableSetup and FinanceAgreements are what 2025.8 answers; older sandboxes and scenario files wrote the
# display names run together ("TableSetup", "Agreements"), which are still accepted. itemIdentifier values are
# NOT confirmed: compared ignoring case, spaces and the spacing around "/".
TABLE_SETUP_CUSTOMIZE = "Table Setup"
AGREEMENTS_CUSTOMIZE = "Agreements"
CUSTOMIZE_IDENTIFIERS: dict[str, tuple[str, ...]] = {
    # display name -> the spellings that mean it: the SPEC's enum value first
    TABLE_SETUP_CUSTOMIZE: ("SystemTableSetup", "Table Setup", "TableSetup"),
    AGREEMENTS_CUSTOMIZE: ("FinanceAgreements", "Agreements"),
}

RANK = {"None": 0, "My": 1, "All": 2}

ROLE_CLICKS = "In ConnectWise go to System > Security Roles > open the API member's security role"


def text_key(text: str | None) -> str:
    return " ".join((text or "").split()).casefold()


@lru_cache(maxsize=4096)
def item_key(text: str | None) -> str:
    return "/".join(part.strip() for part in text_key(text).split("/"))


def _squash(text: str | None) -> str:
    return "".join(ch for ch in (text or "").casefold() if ch.isalnum())


_CUSTOMIZE_ALIASES = {
    _squash(spelling): _squash(spellings[0])
    for spellings in CUSTOMIZE_IDENTIFIERS.values()
    for spelling in spellings
}


@lru_cache(maxsize=256)
def customize_key(text: str | None) -> str:
    """One key per Access Allowed list: "SystemTableSetup" == "TableSetup" == "Table Setup"."""
    squashed = _squash(text)
    return _CUSTOMIZE_ALIASES.get(squashed, squashed)


def level_of(value) -> str:
    return value if value in RANK else "None"


def inquire_my_note(ctx: RunContext, module: str, function: str) -> str | None:
    """A sentence naming Inquire level "My" on ``module > function`` as the likely cause of a record the run
    could not see, or None when the role does not have it (or mySecurity is unreadable).

    With "My", ConnectWise answers only the member's own records (docs/connectwise/REFERENCE.md §2), which for
    an API member is usually few or none: a company or agreement then looks deleted when it is only hidden."""
    if ctx.error_of("my_security") is not None:
        return None
    wanted = (text_key(module), text_key(function))
    for row in ctx.get("my_security"):
        if (text_key(row.get("moduleName")), text_key(row.get("moduleFunctionName"))) == wanted:
            if level_of(row.get("inquireLevel")) == "My":
                return (
                    f'Likely cause: the API member\'s security role has {module} > {function} Inquire level is "My", '
                    "so ConnectWise shows it only the records it owns. Set Inquire to All ("
                    f"{ROLE_CLICKS} > section {module} > {function} > Inquire Level All > Save)."
                )
            return None
    return None


def allowed_items(ctx: RunContext) -> dict[str, set[str]] | None:
    """Customize identifier (normalised) -> allowed item names (normalised); None when unreadable."""
    if ctx.error_of("customize_items") is not None:
        return None

    def build() -> dict[str, set[str]]:
        out: dict[str, set[str]] = {}
        for row in ctx.get("customize_items"):
            out.setdefault(customize_key(row.get("customizeIdentifier")), set()).add(
                item_key(row.get("itemIdentifier"))
            )
        return out

    return ctx.remember("allowed_customize_items", build)


def agreement_type_allowed(allowed: dict[str, set[str]], type_name: str) -> bool:
    return item_key(type_name) in allowed.get(customize_key(AGREEMENTS_CUSTOMIZE), set())
