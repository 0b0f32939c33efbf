"""Measuring a process from the inside and beside it (Linux /proc, with fallbacks): resident set now and at peak
(``RssSampler``, ``rss_now_mb``, ``maxrss_mb``), another process's or process group's CPU time
(``process_cpu_seconds``, ``process_group_cpu_seconds``), the load
average, and a CPU-burning neighbour (``NoisyNeighbour``). Used by ``benchmark verify``, its worker side
(``verify_worker``, which must stay light: this module imports nothing of the product) and ``benchmark fleet``.
"""

from __future__ import annotations

import os
import resource
import subprocess
import sys
import threading


class RssSampler:
    """The process's resident set sampled every 5 ms from /proc (Linux): its peak during the verifies, whatever
    the process held before (``ru_maxrss`` is a high-water mark since the process started)."""

    def __init__(self) -> None:
        self.peak_mb = self.start_mb = rss_now_mb()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.wait(0.005):
            self.peak_mb = max(self.peak_mb, rss_now_mb())

    def __enter__(self) -> RssSampler:
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()


def process_cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of another process, from ``/proc/PID/stat`` (Linux; 0.0 elsewhere)."""
    try:
        with open(f"/proc/{pid}/stat") as fh:
            fields = fh.read().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    except (OSError, ValueError, IndexError):
        return 0.0


def process_group_cpu_seconds(pgid: int) -> float:
    """User + system CPU seconds of the living processes of process group ``pgid`` (a worker and its prefork
    children), from ``/proc`` (Linux; 0.0 elsewhere). Children that already exited are not counted."""
    total = 0.0
    try:
        pids = [p for p in os.listdir("/proc") if p.isdigit()]
    except OSError:
        return 0.0
    for pid in pids:
        try:
            with open(f"/proc/{pid}/stat") as fh:
                fields = fh.read().rsplit(")", 1)[1].split()
            if int(fields[2]) == pgid:
                total += (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
        except (OSError, ValueError, IndexError):
            continue
    return total


class NoisyNeighbour:
    """A CPU-burning process (a busy loop) beside the benchmark, like another tenant's job on the same cores."""

    def __enter__(self) -> NoisyNeighbour:
        self.proc = subprocess.Popen([sys.executable, "-c", "while True:\n    pass"])
        return self

    def __exit__(self, *exc) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


def load_average() -> float | None:
    """The 1-minute load average (how busy the shared cores were), or None where unavailable."""
    try:
        return round(os.getloadavg()[0], 2)
    except OSError:
        return None


def rss_now_mb() -> float:
    """This process's resident set now, in MB (from /proc; the high-water mark where /proc is not there)."""
    try:
        with open("/proc/self/statm") as fh:
            pages = int(fh.read().split()[1])
        return pages * os.sysconf("SC_PAGE_SIZE") / (1024 * 1024)
    except (OSError, ValueError, IndexError):
        return maxrss_mb()


def maxrss_mb() -> float:
    """This process's resident set high-water mark since it started (``ru_maxrss``), in MB."""
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return rss / (1024 * 1024) if sys.platform == "darwin" else rss / 1024  # bytes on macOS, KiB on Linux
