"""Which agreement of a chosen company takes the seats of its billing motion: the one candidate rule.

``candidates_for`` is the rule (the check uses it, and the agreements page through ``fitting_motions`` /
``directory_candidates``); ``select_targets`` applies it, with the partner's explicit choice first, to every chosen
company; the hidden-type helpers say which agreement types the role's Access Allowed list hides from the API
member, so a company's agreement may be invisible to us (issue 17).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from .agreement_facts import (
    ANNUAL,
    ONE_TIME_OPTION,
    agreements_by_company,
    cycles_by_id,
    is_active,
    is_child,
    is_pending,
    one_time_signals,
    type_is_one_time,
)
from .choices import MOTION_LABELS
from .context import RunContext, ref_id, ref_name
from .role import agreement_type_allowed, allowed_items


@dataclass(slots=True)  # thousands per run (benchmark verify): no __dict__ each
class Target:
    company_id: int
    motion: str
    how: str  # "explicit", "auto", "none", "ambiguous", "explicit_missing", "hidden"
    agreement: dict | None = None
    candidates: list[dict] = field(default_factory=list)
    requested_id: int | None = None
    fell_back: bool = False  # auto target of another type than the motion prefers (agreements.type_fallback)
    hidden_types: list[dict] = field(default_factory=list)  # types the motion may need that the role hides
    # True when ``agreement`` came from the company's active top-level agreements (``_SortedOut.groups``): known
    # to be active (``is_active``) and no child (``is_child``) without asking again.
    active_top_level: bool = False


def candidates_for(agreements: list[dict], motion: str, ctx: RunContext) -> list[dict]:
    """The agreements that could take the motion's seats, among the company's active top-level ones.

    Monthly/Azure: the recurring ones (a one-time agreement never takes monthly seats), narrowed by type name
    when that leaves at least one: Azure Plan seats go to an agreement whose type names Azure, monthly seats to one whose
    type does not (a customer with an "O365" and an "Azure Plan" agreement is not ambiguous). Annual: the
    one-time ones; when there is none, a single active agreement is still the target (and gets
    annual_not_one_time), several are no target at all (not_mapped: none of them is one-time).
    When no active agreement fits, the ones that fit but have not started yet (``is_pending``) are the
    candidates: the target is then reported as ``agreements.not_started`` with its date, as the sync would see it.
    """
    return fit_motion(agreements, motion, ctx)[0]


def fit_motion(agreements: list[dict], motion: str, ctx: RunContext) -> tuple[list[dict], bool]:
    """``(candidates, fell_back)``: ``fell_back`` is True when the motion's preferred type (an Azure type for
    Azure Plan, a non-Azure one for monthly) had no agreement and the candidates are of another type."""
    found, fell_back = _sorted_out(agreements, ctx).fit(motion)
    return list(found), fell_back


@dataclass(slots=True)
class _SortedOut:
    """A company's agreements sorted by the questions of the candidate rule, asked once per agreement: active and
    top-level, then one-time or recurring, then (recurring) Azure-named type or not; the pending ones (not started
    yet) only when a motion finds no active one. Every motion's candidates then come from these lists: a large
    tenant asks ``fit_motion`` for each of its companies and motions (benchmark verify: 20,000 times)."""

    agreements: list[dict]
    now: datetime  # the run's (no reference to the RunContext: that would be a cycle the GC must find)
    cycles: dict[int, dict]
    groups: tuple[list[dict], list[dict], list[dict], list[dict], list[dict]] | None = None
    pending: _SortedOut | None = None
    any_active: bool | None = None  # set by every_company: some agreement of the list is active

    @classmethod
    def of(
        cls,
        agreements: list[dict],
        now: datetime,
        cycles: dict[int, dict],
        *,
        fitting: list[dict] | None = None,
    ) -> _SortedOut:
        """``fitting``: the agreements to sort (default: the active top-level ones of ``agreements``)."""
        out = cls(agreements, now, cycles)
        if fitting is None:
            fitting = [a for a in agreements if is_active(a, now) and not is_child(a)]
        one_time, recurring, azure, other = [], [], [], []
        for a in fitting:
            if one_time_signals(a, cycles):
                one_time.append(a)
            else:
                recurring.append(a)
                (azure if is_azure_type(ref_name(a, "type")) else other).append(a)
        out.groups = (fitting, one_time, recurring, azure, other)
        return out

    @classmethod
    def every_company(
        cls, by_company: dict[int, list[dict]], now: datetime, cycles: dict[int, dict]
    ) -> dict[int, _SortedOut]:
        """``of`` for every company's list of ``by_company`` (company id -> its agreements), in one pass over the
        agreements: the same questions as ``of`` (``is_active``, ``is_child``, ``one_time_signals``,
        ``is_azure_type``) asked inline, since a large tenant asks them 10,000 times per run (benchmark
        verify). ``any_active`` is also set: whether any of the company's agreements is active."""
        out: dict[int, _SortedOut] = {}
        # is_active's verdict per combination of the fields it reads: a tenant's agreements share a handful.
        verdicts: dict[tuple, bool] = {}
        # billing cycle id -> bills one time (billingOptions, as one_time_signals reads it); type name -> Azure-named
        one_time_cycles = {cid: c.get("billingOptions") == ONE_TIME_OPTION for cid, c in cycles.items()}
        azure_names: dict = {}
        for cid, agreements in by_company.items():
            fitting, one_time, recurring, azure, other = [], [], [], [], []
            any_active = False
            for a in agreements:
                get = a.get
                key = (
                    get("agreementStatus"),
                    get("cancelledFlag"),
                    get("startDate"),
                    get("billStartDate"),
                    get("dateCancelled"),
                    get("endDate"),
                    get("noEndingDateFlag"),
                )
                try:
                    active = verdicts[key]
                except KeyError:
                    active = verdicts[key] = is_active(a, now)
                except TypeError:  # a value that cannot be a key (a list, an object): asked plainly
                    active = is_active(a, now)
                if not active:
                    continue
                any_active = True
                if get("parentAgreement"):  # is_child
                    continue
                fitting.append(a)
                cycle = get("billingCycle")
                one_time_cycle = False
                if cycle.__class__ is dict:
                    try:
                        one_time_cycle = one_time_cycles[cycle.get("id")]
                    except (KeyError, TypeError):  # no cycle of ours (or an id that cannot be a key)
                        pass
                if one_time_cycle or get("billOneTimeFlag") or get("oneTimeFlag"):  # one_time_signals
                    one_time.append(a)
                    continue
                recurring.append(a)
                kind = get("type")
                name = (kind.get("name") or kind.get("identifier") or "") if kind.__class__ is dict else ""
                try:
                    azure_named = azure_names[name]
                except KeyError:
                    azure_named = azure_names[name] = "azure" in str(name).casefold()
                except TypeError:
                    azure_named = "azure" in str(name).casefold()
                (azure if azure_named else other).append(a)  # is_azure_type(ref_name(...))
            sorted_out = cls(agreements, now, cycles, (fitting, one_time, recurring, azure, other))
            sorted_out.any_active = any_active
            out[cid] = sorted_out
        return out

    def fit(self, motion: str) -> tuple[list[dict], bool]:
        found, fell_back = self._fit(motion)
        if not found:
            if self.pending is None:
                waiting = [a for a in self.agreements if not is_child(a) and is_pending(a, self.now)]
                self.pending = _SortedOut.of(waiting, self.now, self.cycles, fitting=waiting)
            found, fell_back = self.pending._fit(motion)
        return found, fell_back

    def fit_active(self, motion: str) -> tuple[list[dict], bool]:
        """``fit`` among the active top-level agreements only (no fallback to the pending ones): empty when none
        fits."""
        return self._fit(motion)

    def _fit(self, motion: str) -> tuple[list[dict], bool]:
        fitting, one_time, recurring, azure, other = self.groups  # type: ignore[misc]
        if motion == ANNUAL:
            if one_time:
                return one_time, False
            # A single recurring agreement is still the target (annual_not_one_time says what is wrong with it).
            return (fitting, True) if len(fitting) == 1 else ([], False)
        preferred = azure if motion == "azure" else other
        if preferred:
            return preferred, False
        return recurring, bool(recurring)


def active_top_level(agreements: list[dict], ctx: RunContext) -> list[dict]:
    """The active agreements among ``agreements`` that are not children of another, in their order (from the
    candidate rule's sorting of that list, made at most once per run)."""
    return list(_sorted_out(agreements, ctx).groups[0])  # type: ignore[index]


def _sorted_out(agreements: list[dict], ctx: RunContext) -> _SortedOut:
    """The ``_SortedOut`` of this very list, made once per run (kept with the list, so its id is never reused).
    The lists of ``agreements_by_company`` are sorted all at once (``sorted_by_company``)."""
    memo = ctx.remember("agreements_sorted_out", dict)
    hit = memo.get(id(agreements))
    if hit is not None and hit[0] is agreements:
        return hit[1]
    sorted_out = _SortedOut.of(agreements, ctx.now, _cycles_or_none(ctx))
    memo[id(agreements)] = (agreements, sorted_out)
    return sorted_out


def _cycles_or_none(ctx: RunContext) -> dict[int, dict]:
    """The billing cycles by id; empty when they could not be read."""
    return ctx.remember(
        "agreement_cycles_or_none",
        lambda: cycles_by_id(ctx) if ctx.error_of("billing_cycles") is None else {},
    )


def sorted_by_company(ctx: RunContext) -> dict[int, _SortedOut]:
    """Company id -> the candidate rule's sorting of its agreements (``agreements_by_company``), made once per
    run in one pass (``_SortedOut.every_company``) and shared with ``_sorted_out`` for the same lists. Raises
    ResourceError when the agreements could not be read."""

    def build() -> dict[int, _SortedOut]:
        by_company = agreements_by_company(ctx)
        out = _SortedOut.every_company(by_company, ctx.now, _cycles_or_none(ctx))
        memo = ctx.remember("agreements_sorted_out", dict)
        for sorted_out in out.values():
            memo[id(sorted_out.agreements)] = (sorted_out.agreements, sorted_out)
        return out

    return ctx.remember("agreements_sorted_by_company", build)


def is_azure_type(type_name: str | None) -> bool:
    """Name heuristic (no ConnectWise flag tells an Azure Plan type from an Office 365 one): it only orders the
    candidates and, when it decides a target, the step says so in a warning (``agreements.type_fallback``)."""
    return "azure" in (type_name or "").casefold()


def fitting_motions(agreements: list[dict], ctx: RunContext) -> dict[int, list[str]]:
    """agreement id -> the billing motions (keys of MOTION_LABELS) for which ``candidates_for`` counts it among
    the company's candidates. The customers step stores this with each agreement of the company list (``fits``),
    so the agreements page shows exactly the check's rule (``directory_candidates``)."""
    sorted_out = _sorted_out(agreements, ctx)  # candidates_for's own sorting, looked up once for every motion
    out: dict[int, list[str]] = {}
    for motion in MOTION_LABELS:
        for a in sorted_out.fit(motion)[0]:
            out.setdefault(a["id"], []).append(motion)
    return out


def directory_candidates(rows: list[dict], motion: str) -> list[dict] | None:
    """The candidates for ``motion`` among a company's stored agreement summaries (the company list's
    ``agreements``: ``{id, name, ..., fits: [motions]}``), as ``candidates_for`` chose them when the customers step
    ran. None when the list was stored before ``fits`` was kept (the page then says to check again)."""
    if any("fits" not in r for r in rows):
        return None
    return [r for r in rows if motion in r["fits"]]


def select_targets(ctx: RunContext) -> list[Target]:
    """The target agreement of every chosen company (needs the agreements read; raises ResourceError)."""

    def build() -> list[Target]:
        sorted_out = sorted_by_company(ctx)
        by_id = ctx.remember("agreements_by_id", lambda: {a["id"]: a for a in ctx.get("agreements")})
        nothing = _SortedOut([], ctx.now, {}, ([], [], [], [], []))
        hidden_by_motion: dict[str, list[dict]] = {}
        targets = []
        for chosen in ctx.choices.companies:
            cid = chosen.cw_company_id
            motion = chosen.motion if chosen.motion in MOTION_LABELS else "monthly"
            company_sorted = sorted_out.get(cid, nothing)
            found, fell_back = company_sorted.fit_active(motion)
            active = bool(found)
            if not found:  # the pending ones (not started yet), as fit() falls back to them
                found, fell_back = company_sorted.fit(motion)
            found = list(found)
            hidden = hidden_by_motion.get(motion)
            if hidden is None:
                hidden = hidden_by_motion[motion] = hidden_types_for(ctx, motion)
            if chosen.agreement_id:
                agreement = by_id.get(chosen.agreement_id)
                if agreement is None or ref_id(agreement, "company") != cid:
                    target = Target(cid, motion, "explicit_missing", None, found, chosen.agreement_id)
                    target.hidden_types = hidden
                    targets.append(target)
                else:
                    targets.append(Target(cid, motion, "explicit", agreement, found, chosen.agreement_id))
            elif hidden and (not found or fell_back):
                # The role's Access Allowed list hides agreement types this motion may need: the company's
                # agreement of that type is invisible to us, so another type's agreement is no safe target.
                targets.append(Target(cid, motion, "hidden", None, found, hidden_types=hidden))
            elif len(found) == 1:
                targets.append(
                    Target(cid, motion, "auto", found[0], found, fell_back=fell_back, active_top_level=active)
                )
            elif not found:
                targets.append(Target(cid, motion, "none", None, found))
            else:
                targets.append(Target(cid, motion, "ambiguous", None, found))
        return targets

    return ctx.remember("targets", build)


def target_type_names(ctx: RunContext) -> set[str] | None:
    """Agreement types of the chosen companies' targets; None when the agreements could not be read."""
    if not ctx.choices.companies:
        return set()
    if ctx.error_of("agreements") is not None:
        return None
    names: set[str] = set()
    for t in select_targets(ctx):
        if t.agreement:
            name = ref_name(t.agreement, "type")
            if name:
                names.add(name)
    return names


def hidden_types(ctx: RunContext) -> list[dict]:
    """Active agreement types that the role's Agreements Access Allowed list lacks (empty when the list or the
    types are unreadable). ConnectWise does not show the member agreements of these types (issue 17; the
    sandbox does the same), so a company's agreement of such a type is invisible to every read we make."""
    allowed = allowed_items(ctx)
    if allowed is None or ctx.error_of("agreement_types") is not None:
        return []
    return ctx.remember(
        "hidden_agreement_types",
        lambda: [
            t
            for t in ctx.get("agreement_types")
            if not t.get("inactiveFlag") and t.get("name") and not agreement_type_allowed(allowed, t["name"])
        ],
    )


def hidden_types_for(ctx: RunContext, motion: str) -> list[dict]:
    """The hidden types that could hold the motion's agreement: one-time types for annual seats, Azure-named types
    for Azure Plan, the others for monthly."""
    return ctx.remember(f"hidden_agreement_types:{motion}", lambda: _hidden_types_for(ctx, motion))


def _hidden_types_for(ctx: RunContext, motion: str) -> list[dict]:
    hidden = hidden_types(ctx)
    if not hidden:
        return []
    if motion == ANNUAL:
        fitting = [t for t in hidden if type_is_one_time(t)]
    elif motion == "azure":
        fitting = [t for t in hidden if is_azure_type(t.get("name")) and not type_is_one_time(t)]
    else:
        fitting = [t for t in hidden if not is_azure_type(t.get("name")) and not type_is_one_time(t)]
    return fitting


def hidden_types_needed(ctx: RunContext) -> dict[str, list[int]]:
    """Hidden type name -> the chosen companies whose motion may need it (their target is missing, or would be
    another type's agreement). Empty when the agreements could not be read."""
    if not ctx.choices.companies or ctx.error_of("agreements") is not None:
        return {}
    out: dict[str, list[int]] = {}
    for t in select_targets(ctx):
        if t.how in ("hidden", "explicit_missing"):
            for agreement_type in t.hidden_types:
                out.setdefault(agreement_type["name"], []).append(t.company_id)
    return out
