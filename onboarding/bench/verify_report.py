"""``benchmark verify``'s report for people (``print_table``) and the targets of PRODUCT.md it is judged against."""

from __future__ import annotations

TARGET_LEVELS = 2
TARGET_CPU_S = 0.2
TARGET_ROUND_TRIPS = 2.5
TARGET_NOISY_ROUND_TRIPS = 4.0
TARGET_PEAK_MB = 150


def print_table(result: dict, write=print) -> None:
    """The figures of ``onboarding.bench.verify.run`` as a table, one ``write`` call per line."""
    large, small = result["large"], result["small"]
    yes = {True: "yes", False: "NO", None: "not measured"}
    met = result["met"]
    write(
        f"Verify benchmark on {result['database']}: {large['companies']:,} companies, {large['agreements']:,} "
        f"agreements, {large['latency_ms']} ms latency, max {large['max_in_flight']} calls in flight "
        f"(total {result['total_seconds']} s)"
    )
    write(f"Run: {large['run_status']}, ready={large['ready']}")
    write("")

    def timing(figures: dict, label: str, target: float, ok) -> list[tuple[str, str]]:
        return [
            (
                f"wall time, median ({label})",
                f"{figures['wall_s']:.3f} s (checks {figures['checks_s']:.3f} s + storing results "
                f"{figures['store_s']:.3f} s); samples {figures['wall_samples_s']}; load "
                f"{figures['load_before']} -> {figures['load_after']}",
            ),
            (
                "  round trips (wall / latency)",
                f"{figures['round_trips']}; target <= {target}: {yes[ok]}; ratio to the old four-level bound "
                f"{figures['ratio_old_bound']}",
            ),
            (
                "  product CPU per verify",
                f"{figures['cpu_s']:.3f} s (samples {figures['cpu_samples_s']}); sandbox CPU per verify "
                f"{figures['sandbox_cpu_s'] if figures['sandbox_cpu_s'] is not None else 'n/a (same process)'} s",
            ),
            ("  levels observed", f"{figures['levels']} (samples {figures['levels_samples']})"),
        ]

    rows = [
        ("API calls", f"{large['api_calls']} (sandbox served {large['served_requests']})"),
        (
            "  minimum the data needs",
            f"{large['needed_calls']} = {large['needed_pages']} pages of 1000 + constant {large['call_constant']} "
            f"({large['call_constant_is']})",
        ),
        ("  within the minimum", yes[met["calls"]]),
        (
            "existing_billing, apart",
            f"{large['existing_billing_calls']} calls (one read per agreement; runs weekly, on request and after "
            "choices change, never in the figures above)",
        ),
        (
            "levels observed",
            f"{large['levels']} (target <= {TARGET_LEVELS}: {yes[met['levels']]}); before the read hints: "
            f"{large['old_levels']}",
        ),
        ("chain of dependent calls", f"{large['chain_levels']} levels: {large['chain']}"),
        ("  bound (levels x latency)", f"{large['chain_bound_s']:.3f} s"),
        (
            "  ratio wall / bound",
            f"{large['ratio']} (checks only {large['checks_ratio']})",
        ),
        *timing(
            {**large, "levels_samples": large["levels_samples"]},
            "quiet",
            TARGET_ROUND_TRIPS,
            met["round_trips"],
        ),
        (
            "  product CPU target",
            f"<= {TARGET_CPU_S} s: {yes[met['cpu_s']]}",
        ),
    ]
    if large.get("noisy"):
        rows += timing(large["noisy"], "noisy neighbour", TARGET_NOISY_ROUND_TRIPS, met["noisy_round_trips"])
    worker = large.get("worker")
    if worker:
        rows.append(
            (
                "peak memory (worker)",
                f"resident set peak {worker['rss_peak_mb']} MB in a fresh worker-like process during "
                f"{len(worker['wall_s'])} verifies ({worker['rss_loaded_mb']} MB with Django and the product loaded, "
                f"before the first), importing only what the deployed image installs; its wall "
                f"{worker['wall_median_s']} s and CPU {worker['cpu_median_s']} s per "
                f"verify (median); target < {large['target_peak_mb']} MB: {yes[met['peak_mb']]}",
            )
        )
        dev = worker.get("dev_venv")
        if dev:
            rows.append(
                (
                    "  with the test extras",
                    f"resident set peak {dev['rss_peak_mb']} MB ({dev['rss_loaded_mb']} MB loaded) in the same "
                    "process started with everything this virtualenv holds (the [test] extras bring rich, pygments, "
                    "jinja2 and requests into httpx, Django and DRF), which no deployed worker loads",
                )
            )
    rows += [
        (
            "  benchmark process",
            f"resident set peak {large['rss_peak_mb']} MB during the verifies (from "
            f"{large['rss_start_mb']} MB before them, {large.get('rss_loaded_mb')} MB before the first verify, "
            f"after migrating the scratch database and creating the tenant; tracemalloc peak of one verify "
            f"{large['tracemalloc_peak_mb']} MB; sandbox {large['sandbox']})",
        ),
        (
            "small tenant rate",
            f"{small['verifications_per_s']} verifications/s ({small['ms_per_verification']} ms each; "
            f"{small['runs']} runs of {small['companies']} companies, no latency)",
        ),
    ]
    width = max(len(r[0]) for r in rows)
    for name, value in rows:
        write(f"{name:<{width}}  {value}")
    for row in large.get("profile") or []:
        write(
            f"  profile  {row['own_s']:.4f} s own  {row['cumulative_s']:.4f} s cum  {row['calls']:>7}  {row['function']}"
        )
