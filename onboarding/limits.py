"""Shared limits on concurrent ConnectWise calls: per API host and per clientId, across every worker process.

Each client already bounds its own tenant's calls (``CONNECTWISE_MAX_IN_FLIGHT``). Many tenants live on one
ConnectWise cloud host, and every call carries the product's one ``clientId``, so a fleet of workers verifying
tenants at once could send a host far more calls than one worker would. ConnectWise publishes no rate limit
(REFERENCE §6: "no official statement", so the numbers are an assumption, configurable): the product holds
itself to ``CONNECTWISE_MAX_PER_HOST`` calls in flight per host and ``CONNECTWISE_MAX_PER_CLIENT_ID`` per clientId.

With ``REDIS_URL`` the slots are Redis-backed semaphores (``limiters.SyncSemaphore`` from the
``redis-rate-limiters`` package: a Redis list of tokens created atomically by a Lua script, taken with BLPOP and
given back with LPUSH), shared by every worker process and machine on that Redis. Without Redis (the embedded
filesystem broker, development) each process has its own ``threading.BoundedSemaphore`` per host and clientId.

A slot is held only while one request is on the wire (``ConnectWiseClient(shared_slot=...)``), host first, then
clientId, in that order everywhere (no deadlock). Waiting longer than ``CONNECTWISE_SLOT_WAIT_SECONDS`` raises
``connectwise.errors.Timeout`` (nothing was sent, so the client retries it like a failure to connect).
"""

from __future__ import annotations

import hashlib
import threading
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from functools import lru_cache

from django.conf import settings

from connectwise import errors

# A token whose holder died (a worker killed mid-call) comes back when the semaphore has been idle this long:
# the library sets this expiry on its keys at every acquire and release. Longer than any one call may take.
SLOT_EXPIRY_MARGIN_SECONDS = 30


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
def _redis(url: str):
    import redis  # noqa: PLC0415

    # One connection pool per process and URL; BLPOP holds a connection while it waits, so the pool grows with
    # the threads waiting (bounded by the clients' own in-flight bounds).
    return redis.Redis.from_url(url, socket_connect_timeout=5, health_check_interval=30)


def _redis_semaphore(
    url: str, name: str, capacity: int, wait: float
) -> Callable[[], AbstractContextManager[None]]:
    from limiters import MaxSleepExceededError, SyncSemaphore  # noqa: PLC0415
    from redis.exceptions import RedisError  # noqa: PLC0415

    # The capacity is part of the name: a changed setting starts a new semaphore instead of inheriting the old
    # one's token count.
    full_name = f"cw-onboarding:{name}:cap{capacity}"
    expiry = int(settings.CONNECTWISE_TIMEOUT_SECONDS) + SLOT_EXPIRY_MARGIN_SECONDS

    @contextmanager
    def hold() -> Iterator[None]:
        semaphore = SyncSemaphore(
            name=full_name, capacity=capacity, max_sleep=wait, expiry=expiry, connection=_redis(url)
        )
        try:
            semaphore.__enter__()
        except MaxSleepExceededError:
            raise _timeout(name, wait) from None
        except RedisError as exc:
            raise _unavailable(exc) from None
        try:
            yield
        finally:
            try:
                semaphore.__exit__(None, None, None)
            except RedisError as exc:
                raise _unavailable(exc) from None

    return hold


def _unavailable(exc: Exception) -> errors.ConnectionFailed:
    failure = errors.ConnectionFailed(
        f"the shared ConnectWise call limit (Redis) is unavailable: {type(exc).__name__}"
    )
    failure._nothing_sent = True  # type: ignore[attr-defined]
    return failure
