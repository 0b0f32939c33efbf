"""Call accounting (``connectwise.callstats``); what the client records is tested in test_client.py."""

from __future__ import annotations

from connectwise.callstats import CallStats, path_template


def test_path_template():
    assert path_template("finance/agreements/12/additions") == "finance/agreements/{id}/additions"
    assert path_template("/system/securityRoles/3/settings?x=1") == "system/securityRoles/{id}/settings"


def test_levels_count_round_trips_overlapping_calls_as_one():
    stats = CallStats()
    assert stats.levels() == 0
    for sent, answered in [
        (0.0, 1.0),
        (0.5, 1.5),
        (1.2, 2.0),
        (2.5, 3.0),
    ]:  # 2 overlap; the 3rd waits for the 1st
        stats.record_call("GET", "x", 1.0, failed=False, interval=(sent, answered))
    assert stats.levels() == 3


def test_a_snapshot_does_not_move_with_the_stats():
    stats = CallStats()
    stats.record_call("GET", "company/companies", 2.0, failed=True)
    stats.record_retry()
    snap = stats.snapshot()
    stats.record_call("GET", "company/companies", 2.0, failed=False)
    assert (snap.calls, snap.retries, snap.errors) == (1, 1, 1)
    assert stats.as_dict()["by_endpoint"] == {"GET company/companies": 2}
