"""The shared limits on concurrent ConnectWise calls (onboarding/limits.py): per host and per clientId, across
clients (per process without Redis, in Redis across processes with it), seen from the sandbox's side."""

from __future__ import annotations

import os
import threading
import time
import uuid

import pytest
from django.test import override_settings

from connectwise import errors
from connectwise.checks.runner import ChosenCompany, ConnectionInfo, TenantChoices, run_steps
from connectwise.client import ConnectWiseClient, Credentials
from connectwise.sandbox import SandboxApp, generate_scenario, parse_scenario, sandbox_transport
from onboarding import limits

CLIENT_ID = "0f0f0f0f-0000-1111-2222-333344445555"


def _hold_many(slot, threads: int, hold_s: float = 0.05) -> int:
    """Run ``threads`` holders at once; return the most that held a slot at the same time."""
    lock = threading.Lock()
    state = {"now": 0, "peak": 0}

    def work():
        with slot():
            with lock:
                state["now"] += 1
                state["peak"] = max(state["peak"], state["now"])
            time.sleep(hold_s)
            with lock:
                state["now"] -= 1

    workers = [threading.Thread(target=work) for _ in range(threads)]
    for t in workers:
        t.start()
    for t in workers:
        t.join()
    return state["peak"]


@override_settings(REDIS_URL=None, CONNECTWISE_MAX_PER_HOST=3, CONNECTWISE_MAX_PER_CLIENT_ID=100)
def test_without_redis_the_host_limit_holds_across_clients_of_the_process():
    host = f"h{uuid.uuid4().hex[:6]}.example:443"
    a, b = limits.slot_factory(host, CLIENT_ID), limits.slot_factory(host, CLIENT_ID)
    assert _hold_many(lambda: _both(a, b), 12) <= 3
    # Another host has slots of its own: holders spread over both hosts go past one host's cap.
    other = limits.slot_factory("other-" + host, CLIENT_ID)
    assert 3 < _hold_many(lambda: _both(a, other), 12) <= 6


@override_settings(REDIS_URL=None, CONNECTWISE_MAX_PER_HOST=100, CONNECTWISE_MAX_PER_CLIENT_ID=2)
def test_without_redis_the_client_id_limit_holds_across_hosts():
    client_id = str(uuid.uuid4())
    slots = [limits.slot_factory(f"h{i}-{client_id[:6]}.example", client_id) for i in range(4)]
    counter = iter(range(10**6))
    assert _hold_many(lambda: slots[next(counter) % 4](), 12) <= 2


@override_settings(
    REDIS_URL=None,
    CONNECTWISE_MAX_PER_HOST=1,
    CONNECTWISE_MAX_PER_CLIENT_ID=10,
    CONNECTWISE_SLOT_WAIT_SECONDS=1,
)
def test_no_free_slot_in_time_is_a_timeout_before_anything_is_sent():
    slot = limits.slot_factory(f"busy-{uuid.uuid4().hex[:6]}.example", CLIENT_ID)
    with slot():
        started = time.monotonic()
        with pytest.raises(errors.Timeout) as caught:
            with slot():
                pass
    assert 0.9 <= time.monotonic() - started < 5
    assert "CONNECTWISE_MAX_PER_HOST" in str(caught.value) and caught.value._nothing_sent


def _both(a, b):
    """Alternate between two clients' slot factories (same host)."""
    _both.n = getattr(_both, "n", 0) + 1
    return (a if _both.n % 2 else b)()


@override_settings(REDIS_URL=None, CONNECTWISE_MAX_PER_HOST=5, CONNECTWISE_MAX_PER_CLIENT_ID=100)
def test_tenants_verified_at_once_never_send_a_host_more_than_its_cap():
    """Four tenants on one host, 16 calls in flight each: the sandbox never answers more than 5 at once."""
    scenarios = [parse_scenario(generate_scenario(30, 60, company_id=f"cap{i}", seed=i)) for i in range(4)]
    app = SandboxApp(scenarios, prerender=True)
    app.set_faults({"latencyMs": 40})
    host = f"sandbox-{uuid.uuid4().hex[:6]}.test"
    slot = limits.slot_factory(host, CLIENT_ID)
    outcomes = {}

    def verify(i: int) -> None:
        creds = Credentials(
            origin=f"http://{host}",
            company_id=f"cap{i}",
            public_key=f"cap{i}pub",
            private_key=f"cap{i}priv-0123456789",
            client_id=CLIENT_ID,
        )
        with ConnectWiseClient(
            creds, transport=sandbox_transport(app), max_in_flight=16, shared_slot=slot
        ) as client:
            result = run_steps(
                client,
                TenantChoices([ChosenCompany(c) for c in range(1, 31)]),
                connection=ConnectionInfo(host, host),
            )
        outcomes[i] = {o.key: str(o.status) for o in result}

    app.reset_concurrency()
    threads = [threading.Thread(target=verify, args=(i,)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert all(set(o.values()) == {"pass"} for o in outcomes.values()), outcomes
    peak = app.concurrency()
    assert 3 <= peak["peak"] <= 5, peak  # the cap was reached and held
    assert peak["now"] == 0


@pytest.mark.skipif(not os.environ.get("REDIS_URL"), reason="needs REDIS_URL (a real Redis)")
def test_with_redis_the_limit_is_one_semaphore_for_every_client():
    with override_settings(
        REDIS_URL=os.environ["REDIS_URL"], CONNECTWISE_MAX_PER_HOST=3, CONNECTWISE_MAX_PER_CLIENT_ID=100
    ):
        host = f"redis-{uuid.uuid4().hex[:8]}.example"
        a, b = limits.slot_factory(host, CLIENT_ID), limits.slot_factory(host, CLIENT_ID)
        assert _hold_many(lambda: _both(a, b), 10) == 3


# -- a holder that dies (a worker killed while a request is on the wire) -----------------------------------------

LEASE_S = 2


def _hold_until_killed(host: str, ready) -> None:
    """Child process: take one slot of ``host`` and never give it back (the parent SIGKILLs this process)."""
    slot = limits.slot_factory(host, CLIENT_ID)
    with slot():
        ready.set()
        time.sleep(600)


def _keep_busy(host: str, stop_event) -> None:
    """Child process: the rest of the fleet, taking and giving back a slot of ``host`` without pause."""
    slot = limits.slot_factory(host, CLIENT_ID)
    while not stop_event.is_set():
        with slot():
            time.sleep(0.01)


@pytest.mark.skipif(not os.environ.get("REDIS_URL"), reason="needs REDIS_URL (a real Redis)")
def test_with_redis_a_killed_holders_slot_comes_back_after_its_lease_while_the_fleet_stays_busy(monkeypatch):
    """A worker SIGKILLed mid-call never gives its slot back; the slot must return after a bounded time per
    holder, even though other processes keep the semaphore busy the whole time (the fleet is never idle)."""
    import multiprocessing
    import signal

    monkeypatch.setattr(limits, "SLOT_LEASE_SECONDS", LEASE_S)
    fork = multiprocessing.get_context("fork")
    host = f"killed-{uuid.uuid4().hex[:8]}.example"
    with override_settings(
        REDIS_URL=os.environ["REDIS_URL"],
        CONNECTWISE_MAX_PER_HOST=2,
        CONNECTWISE_MAX_PER_CLIENT_ID=100,
        CONNECTWISE_SLOT_WAIT_SECONDS=1,
    ):
        ready, stop_busy = fork.Event(), fork.Event()
        holder = fork.Process(target=_hold_until_killed, args=(host, ready))
        holder.start()
        assert ready.wait(20), "the child never took its slot"
        os.kill(holder.pid, signal.SIGKILL)
        holder.join(10)
        busy = fork.Process(target=_keep_busy, args=(host, stop_busy))
        busy.start()
        try:
            time.sleep(3 * LEASE_S)  # three leases of traffic on the one slot left
        finally:
            stop_busy.set()
            busy.join(10)
        # Right after the busy traffic (the semaphore was never idle): both slots are free again.
        slot = limits.slot_factory(host, CLIENT_ID)
        with slot(), slot():
            pass


@pytest.mark.skipif(not os.environ.get("REDIS_URL"), reason="needs REDIS_URL (a real Redis)")
def test_with_redis_a_living_holder_keeps_its_slot_past_the_lease(monkeypatch):
    """The lease is renewed while its holder lives: a call longer than the lease never lets a second one in
    past the cap."""
    monkeypatch.setattr(limits, "SLOT_LEASE_SECONDS", LEASE_S)
    with override_settings(
        REDIS_URL=os.environ["REDIS_URL"],
        CONNECTWISE_MAX_PER_HOST=1,
        CONNECTWISE_MAX_PER_CLIENT_ID=100,
        CONNECTWISE_SLOT_WAIT_SECONDS=1,
    ):
        slot = limits.slot_factory(f"long-{uuid.uuid4().hex[:8]}.example", CLIENT_ID)
        with slot():
            time.sleep(2 * LEASE_S)
            with pytest.raises(errors.Timeout) as caught:
                with slot():
                    pass
        assert caught.value._nothing_sent
        with slot():  # given back on exit
            pass


# -- what a slot costs in Redis round trips --------------------------------------------------------------------


def _count_commands(monkeypatch, url: str) -> list[tuple[str, str]]:
    """Record (thread name, command) of every command the shared limits send to Redis (pipelines excepted)."""
    connection = limits._redis(url)
    sent: list[tuple[str, str]] = []
    original = connection.execute_command

    def counting(*args, **kwargs):
        sent.append((threading.current_thread().name, str(args[0]).upper()))
        return original(*args, **kwargs)

    monkeypatch.setattr(connection, "execute_command", counting)
    return sent


@pytest.mark.skipif(not os.environ.get("REDIS_URL"), reason="needs REDIS_URL (a real Redis)")
def test_with_redis_a_slot_of_a_semaphore_far_from_full_takes_one_round_trip(monkeypatch):
    """The usual case (the clientId's 128 slots, a host below its cap): one SET NX takes a slot, without first
    reading every slot of the semaphore."""
    url = os.environ["REDIS_URL"]
    with override_settings(REDIS_URL=url, CONNECTWISE_MAX_PER_HOST=32, CONNECTWISE_MAX_PER_CLIENT_ID=128):
        slot = limits.slot_factory(f"free-{uuid.uuid4().hex[:8]}.example", CLIENT_ID)
        sent = _count_commands(monkeypatch, url)
        with slot():
            taking = [command for _, command in sent]
        assert taking == ["SET", "SET"], taking  # one for the host, one for the clientId


@pytest.mark.skipif(not os.environ.get("REDIS_URL"), reason="needs REDIS_URL (a real Redis)")
def test_with_redis_a_waiter_sleeps_until_a_slot_is_given_back_instead_of_polling(monkeypatch):
    """A caller waiting for a full host's slot does not ask Redis again and again (on a busy fleet, dozens of
    waiting threads polling every few milliseconds cost more CPU than the calls): it blocks until a holder
    gives a slot back, and takes it at once."""
    url = os.environ["REDIS_URL"]
    monkeypatch.setattr(limits, "SLOT_RECHECK_SECONDS", 5)
    with override_settings(
        REDIS_URL=url,
        CONNECTWISE_MAX_PER_HOST=1,
        CONNECTWISE_MAX_PER_CLIENT_ID=100,
        CONNECTWISE_SLOT_WAIT_SECONDS=5,
    ):
        slot = limits.slot_factory(f"full-{uuid.uuid4().hex[:8]}.example", CLIENT_ID)
        sent = _count_commands(monkeypatch, url)
        held, got = threading.Event(), {}

        def waiter():
            held.wait(5)
            with slot():
                got["at"] = time.monotonic()

        thread = threading.Thread(target=waiter, name="waiter")
        with slot():
            thread.start()
            held.set()
            time.sleep(0.6)
            released = time.monotonic()
        thread.join(5)
        assert got, "the waiter never got the slot"
        assert got["at"] - released < 0.25, "the waiter did not take the slot as soon as it came back"
        waiting = [command for name, command in sent if name == "waiter"]
        # One try, one look at every slot, one blocking wait, then the slot given back: no second look at every
        # slot (polling every 5 to 25 ms sent about 30 commands in these 0.6 s).
        assert waiting[:5] == ["SET", "MGET", "BLPOP", "SET", "SET"], waiting  # the last: the clientId's slot
        assert waiting[5:] == ["EVALSHA", "EVALSHA"], waiting  # both given back


@pytest.mark.skipif(not os.environ.get("REDIS_URL"), reason="needs REDIS_URL (a real Redis)")
def test_with_redis_a_semaphore_just_found_full_is_read_whole_without_a_blind_try_first(monkeypatch):
    """On a full host every blind try at a random slot fails: for a moment after finding it full, a caller
    reads every slot at once instead (a wasted SET per call on a saturated fleet)."""
    url = os.environ["REDIS_URL"]
    monkeypatch.setattr(limits, "SLOT_FULL_MEMORY_SECONDS", 30)
    with override_settings(
        REDIS_URL=url,
        CONNECTWISE_MAX_PER_HOST=1,
        CONNECTWISE_MAX_PER_CLIENT_ID=100,
        CONNECTWISE_SLOT_WAIT_SECONDS=1,
    ):
        slot = limits.slot_factory(f"seen-full-{uuid.uuid4().hex[:8]}.example", CLIENT_ID)
        with slot():
            with pytest.raises(errors.Timeout):
                with slot():
                    pass
        sent = _count_commands(monkeypatch, url)
        with slot():
            taking = [command for _, command in sent]
        assert taking == ["MGET", "SET", "SET"], taking  # the host read whole, then the clientId's one try
