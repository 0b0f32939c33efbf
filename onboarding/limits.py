"""Shared limits on concurrent ConnectWise calls: per API host and per clientId, across every worker process.

Each client already bounds its own tenant's calls (``CONNECTWISE_MAX_IN_FLIGHT``). Many tenants live on one
ConnectWise cloud host, and every call carries the product's one ``clientId``, so a fleet of workers verifying
tenants at once could send a host far more calls than one worker would. ConnectWise publishes no rate limit
(REFERENCE §6: "no official statement", so the numbers are an assumption, configurable): the product holds
itself to ``CONNECTWISE_MAX_PER_HOST`` calls in flight per host and ``CONNECTWISE_MAX_PER_CLIENT_ID`` per clientId.

With ``REDIS_URL`` the slots live in Redis, shared by every worker process and machine on that Redis: a semaphore
of capacity N is N slots, each one ``redis.lock.Lock`` (redis-py's own lock: ``SET NX PX`` with a random token,
released and renewed by compare-and-delete / compare-and-expire scripts). A holder takes any free slot; each
slot is a lease of ``SLOT_LEASE_SECONDS`` that a thread of the holder's process renews while the call is on the
wire. A worker killed mid-call stops renewing, so its slot comes back one lease later, whatever the rest of the
fleet is doing (a token-list semaphore that only expires when idle never gives it back on a busy fleet). A caller
that finds every slot taken blocks on the semaphore's wake-up list (``BLPOP``), to which a holder pushes its
slot's key when it gives it back, and tries that slot (or looks at every slot after ``SLOT_RECHECK_SECONDS``,
when a killed holder's lease ran out): a busy fleet's waiting threads do not poll Redis (each wait is a few round trips, not one every few
milliseconds). The list only wakes callers up; the slots themselves are the locks. Without
Redis (the embedded filesystem broker, development) each process has its own ``threading.BoundedSemaphore`` per
host and clientId.

A slot is held only while one request is on the wire (``ConnectWiseClient(shared_slot=...)``), host first, then
clientId, in that order everywhere (no deadlock). Waiting longer than ``CONNECTWISE_SLOT_WAIT_SECONDS`` raises
``connectwise.errors.Timeout`` (nothing was sent, so the client retries it like a failure to connect).
"""

from __future__ import annotations

import hashlib
import logging
import os
import random
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from functools import lru_cache

import redis
from django.conf import settings
from redis.exceptions import LockError, RedisError

from connectwise import errors

log = logging.getLogger(__name__)

# How long a slot stays taken after its holder stops renewing it (a worker killed while a request is on the
# wire): the bound on how long a dead holder shrinks the capacity. A living holder renews every third of it, so
# a call of any length keeps its slot.
SLOT_LEASE_SECONDS = 15

# How long a caller waiting for a full semaphore blocks on its wake-up list before it looks at the slots again
# without being woken: the delay before it sees a slot that came back by expiry (a killed holder), not by release.
SLOT_RECHECK_SECONDS = 0.5

# How long this process remembers that it found a semaphore full: meanwhile a caller goes straight to reading
# every slot instead of first trying one at random (which would fail on a full semaphore: a wasted round trip).
SLOT_FULL_MEMORY_SECONDS = 0.25


def slot_factory(host: str, client_id: str) -> Callable[[], AbstractContextManager[object]]:
    """What ``ConnectWiseClient(shared_slot=...)`` takes: each call returns a context manager that holds one
    slot of ``host`` (``host[:port]``) and one of ``client_id`` while a request is on the wire."""
    host = (host or "").lower()
    per_host = settings.CONNECTWISE_MAX_PER_HOST
    per_client = settings.CONNECTWISE_MAX_PER_CLIENT_ID
    wait = float(settings.CONNECTWISE_SLOT_WAIT_SECONDS)
    if settings.REDIS_URL:
        host_slot = _redis_semaphore(settings.REDIS_URL, f"host:{host}", per_host, wait)
        client_slot = _redis_semaphore(settings.REDIS_URL, f"client:{_digest(client_id)}", per_client, wait)
    else:
        host_slot = _local_semaphore(f"host:{host}", per_host, wait)
        client_slot = _local_semaphore(f"client:{_digest(client_id)}", per_client, wait)

    @contextmanager
    def slot() -> Iterator[None]:
        with host_slot(), client_slot():
            yield

    return slot


def _digest(client_id: str) -> str:
    # The clientId is not a secret, but a short digest keeps Redis keys tidy and free of odd characters.
    return hashlib.blake2b((client_id or "").strip("{}").lower().encode(), digest_size=8).hexdigest()


def _timeout(name: str, wait: float) -> errors.Timeout:
    exc = errors.Timeout(
        f"no free ConnectWise call slot for {name.split(':', 1)[0]} within {wait:.0f} s "
        "(CONNECTWISE_MAX_PER_HOST / CONNECTWISE_MAX_PER_CLIENT_ID)"
    )
    exc._nothing_sent = True  # type: ignore[attr-defined]
    return exc


# -- per process (no Redis) ------------------------------------------------------------------------------------

_local_lock = threading.Lock()
_local: dict[tuple[str, int], threading.BoundedSemaphore] = {}


def _local_semaphore(name: str, capacity: int, wait: float) -> Callable[[], AbstractContextManager[None]]:
    with _local_lock:
        semaphore = _local.setdefault((name, capacity), threading.BoundedSemaphore(capacity))

    @contextmanager
    def hold() -> Iterator[None]:
        if not semaphore.acquire(timeout=wait):
            raise _timeout(name, wait)
        try:
            yield
        finally:
            semaphore.release()

    return hold


# -- across processes (Redis) ----------------------------------------------------------------------------------


@lru_cache(maxsize=8)
def _redis(url: str) -> redis.Redis:
    # One connection pool per process and URL (redis-py resets it in a forked child).
    return redis.Redis.from_url(url, socket_connect_timeout=5, health_check_interval=30)


def _redis_semaphore(
    url: str, name: str, capacity: int, wait: float
) -> Callable[[], AbstractContextManager[None]]:
    # The capacity is part of the name: a changed setting starts a new set of slots.
    prefix = f"cw-onboarding:slot:{name}:cap{capacity}"
    keys = [f"{prefix}:{i}" for i in range(capacity)]
    freed = f"{prefix}:freed"

    @contextmanager
    def hold() -> Iterator[None]:
        connection = _redis(url)
        try:
            lock = _take_slot(connection, keys, freed, wait)
        except RedisError as exc:
            raise _unavailable(exc) from None
        if lock is None:
            raise _timeout(name, wait)
        _renewer().add(lock)
        try:
            yield
        finally:
            _renewer().discard(lock)
            try:
                lock.release()
            except LockError:
                # The lease ran out (this process stopped renewing, e.g. it was frozen): the slot is already back.
                log.warning("ConnectWise call slot %s was lost before its call ended", lock.name)
            except RedisError as exc:
                raise _unavailable(exc) from None
            try:
                _wake_one(connection, freed, capacity, lock.name)
            except RedisError:
                # The slot is back; a waiter sees it when it looks again (SLOT_RECHECK_SECONDS).
                log.warning("could not wake a waiter for ConnectWise call slot %s", lock.name, exc_info=True)

    return hold


_seen_full: dict[str, float] = {}  # wake-up list name -> when (monotonic) this process last found it full


def _take_slot(connection: redis.Redis, keys: list[str], freed: str, wait: float) -> redis.lock.Lock | None:
    """One free slot of ``keys`` as an acquired lock, or None when none came free within ``wait`` seconds.

    First ``SET NX`` on one slot picked at random: one round trip when the semaphore is far from full (the usual
    case for the clientId's slots; skipped for ``SLOT_FULL_MEMORY_SECONDS`` after this process found it full).
    Else one MGET shows the free slots and ``SET NX`` takes one of them (another process may win it: try the
    next); while all are taken, block on the wake-up list ``freed`` until a holder gives a slot back
    (``_wake_one`` pushes the slot's key: the woken caller tries that slot, without reading every slot again), at
    most ``SLOT_RECHECK_SECONDS`` before looking at every slot again."""
    deadline = time.monotonic() + wait
    if time.monotonic() - _seen_full.get(freed, float("-inf")) > SLOT_FULL_MEMORY_SECONDS:
        lock = _try_slot(connection, random.choice(keys))
        if lock is not None:
            return lock
    while True:
        free = [key for key, holder in zip(keys, connection.mget(keys), strict=True) if holder is None]
        random.shuffle(free)  # spread holders over the slots instead of all racing for the first
        for key in free:
            lock = _try_slot(connection, key)
            if lock is not None:
                return lock
        _seen_full[freed] = time.monotonic()
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                return None
            # Redis takes fractions of a second as a BLPOP timeout (6.0+); the socket has no read timeout.
            woken = connection.blpop([freed], timeout=max(0.01, min(left, SLOT_RECHECK_SECONDS)))
            if woken is None:
                break  # nobody gave a slot back meanwhile: look at every slot (a lease may have run out)
            key = woken[1].decode() if isinstance(woken[1], bytes) else str(woken[1])
            lock = _try_slot(connection, key) if key in keys else None
            if lock is not None:
                return lock


def _try_slot(connection: redis.Redis, key: str) -> redis.lock.Lock | None:
    lock = connection.lock(key, timeout=SLOT_LEASE_SECONDS, thread_local=False)
    return lock if lock.acquire(blocking=False) else None


def _wake_one(connection: redis.Redis, freed: str, capacity: int, key: str) -> None:
    """The slot ``key`` came back: wake one caller blocked on ``freed`` and tell it which (one round trip). The
    list holds at most ``capacity`` wake-ups (those nobody was waiting for), so a caller that starts waiting
    later may try a slot once for nothing, never miss one."""
    pipe = connection.pipeline(transaction=False)
    pipe.lpush(freed, key)
    pipe.ltrim(freed, 0, capacity - 1)
    pipe.expire(freed, SLOT_LEASE_SECONDS * 4)
    pipe.execute()


class _Renewer:
    """One daemon thread per process that renews the leases of the slots this process holds: each lock a third
    of its own timeout after it was taken or last renewed."""

    def __init__(self) -> None:
        self._due: dict[redis.lock.Lock, float] = {}  # lock -> when (monotonic) to renew it
        self._lock = threading.Lock()
        self._wake = threading.Event()
        self._next_wake = float("inf")
        self._thread = threading.Thread(target=self._run, name="cw-slot-lease", daemon=True)
        self._thread.start()

    def add(self, lock: redis.lock.Lock) -> None:
        due = time.monotonic() + lock.timeout / 3
        with self._lock:
            self._due[lock] = due
            if due < self._next_wake:  # only when the thread would sleep past it (never on the hot path)
                self._wake.set()

    def discard(self, lock: redis.lock.Lock) -> None:
        with self._lock:
            self._due.pop(lock, None)

    def _run(self) -> None:
        while True:
            with self._lock:
                now = time.monotonic()
                due = [lock for lock, at in self._due.items() if at <= now]
                for lock in due:
                    self._due[lock] = now + lock.timeout / 3
                self._next_wake = min(self._due.values(), default=now + SLOT_LEASE_SECONDS / 3)
                self._wake.clear()
            for lock in due:
                try:
                    lock.reacquire()  # back to a full lease, only if the token is still ours
                except LockError:
                    with self._lock:
                        still_held = self._due.pop(lock, None) is not None  # else released meanwhile: fine
                    if still_held:
                        log.warning("ConnectWise call slot %s expired before it could be renewed", lock.name)
                except RedisError:
                    # Redis is briefly unreachable: try again at the next third; the lease covers two more.
                    log.warning("could not renew ConnectWise call slot %s", lock.name, exc_info=True)
            self._wake.wait(max(0.0, self._next_wake - time.monotonic()))


_renewers: dict[int, _Renewer] = {}
_renewers_lock = threading.Lock()


def _renewer() -> _Renewer:
    # Per process id: a forked child (a Celery pool process) has no copy of its parent's thread.
    pid = os.getpid()
    with _renewers_lock:
        if pid not in _renewers:
            _renewers[pid] = _Renewer()
        return _renewers[pid]


def _unavailable(exc: Exception) -> errors.ConnectionFailed:
    failure = errors.ConnectionFailed(
        f"the shared ConnectWise call limit (Redis) is unavailable: {type(exc).__name__}"
    )
    failure._nothing_sent = True  # type: ignore[attr-defined]
    return failure
