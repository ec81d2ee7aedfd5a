"""A lab of hosts made of network namespaces, for the multi-host tests.

The lab lives inside a network namespace of its own (the caller runs under ``unshare --net --mount``), so nothing
it does can reach the machine's real network: a bridge ``labbr0`` joins one namespace per host, each with its own
address in 10.77.0.0/24 and its own loopback. Processes run on a host through ``ip netns exec``; each host's
processes see only the lab. The one way out is a Unix socket (a file), which the tests use on purpose to reach the
session's real vLLM server without running a second one on a two-core machine (see ``relay.py``).
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import httpx

SUBNET = "10.77.0"
BRIDGE = "labbr0"
NETNS_DIR = Path("/run/netns")


class LabError(RuntimeError):
    """The lab could not be built or a host process did not come up; the message carries its log's tail."""


def _ip(*args: str) -> None:
    result = subprocess.run(["ip", *args], capture_output=True, text=True)
    if result.returncode != 0:
        raise LabError(f"ip {' '.join(args)} failed: {result.stderr.strip()}")


def inside_private_network() -> bool:
    """True when this process's network namespace has nothing but loopback (and the lab's own links): the guard
    that keeps the lab's 10.x addresses from ever being used from the machine's real namespace."""
    links = subprocess.run(["ip", "-o", "link", "show"], capture_output=True, text=True, check=True).stdout
    names = [line.split(":")[1].strip().split("@")[0] for line in links.splitlines()]
    return all(name == "lo" or name == BRIDGE or name.startswith("vl-") for name in names)


def tail(path: Path, lines: int = 25) -> str:
    if not path.exists():
        return f"(no log at {path})"
    return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])


@dataclass
class Process:
    """A process started on a lab host; its whole process group is signalled, so children die with it."""

    name: str
    popen: subprocess.Popen[bytes]
    log: Path

    def alive(self) -> bool:
        return self.popen.poll() is None

    def kill(self, sig: int = signal.SIGKILL) -> None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.popen.pid, sig)
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.popen.wait(timeout=30)

    def stop(self) -> None:
        """SIGTERM, then SIGKILL after 15 s: the polite end of a test."""
        if not self.alive():
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.popen.pid, signal.SIGTERM)
        try:
            self.popen.wait(timeout=15)
        except subprocess.TimeoutExpired:
            self.kill()


@dataclass
class Host:
    name: str
    address: str
    logs: Path
    processes: list[Process] = field(default_factory=list)

    def run(self, argv: Sequence[str], *, name: str, env: Mapping[str, str] | None = None) -> Process:
        """Start ``argv`` on this host in its own process group, output to ``<logs>/<host>-<name>.log``."""
        log = self.logs / f"{self.name}-{name}.log"
        with log.open("ab") as out:
            popen = subprocess.Popen(
                ["ip", "netns", "exec", self.name, *argv],
                stdout=out, stderr=subprocess.STDOUT, env={**os.environ, **(env or {})}, start_new_session=True,
            )  # fmt: skip
        process = Process(name, popen, log)
        self.processes.append(process)
        return process

    def call(self, argv: Sequence[str], *, env: Mapping[str, str] | None = None, timeout: float = 120) -> str:
        """Run ``argv`` on this host to completion; its output, or a LabError with it."""
        result = subprocess.run(
            ["ip", "netns", "exec", self.name, *argv],
            capture_output=True, text=True, env={**os.environ, **(env or {})}, timeout=timeout,
        )  # fmt: skip
        if result.returncode != 0:
            raise LabError(
                f"{' '.join(argv)} on {self.name} exited {result.returncode}: {result.stdout}{result.stderr}"
            )
        return result.stdout


class Lab:
    """The bridge and its hosts. Build it once per test module; ``close`` kills every process it started."""

    def __init__(self, logs: Path) -> None:
        if not inside_private_network():
            raise LabError("the lab must run inside `unshare --net --mount`: this namespace has real interfaces")
        self.logs = logs
        self.hosts: dict[str, Host] = {}
        self.cleanups: list[Callable[[], object]] = []  # for daemons a host started itself (pg_ctl's postmaster)
        NETNS_DIR.mkdir(parents=True, exist_ok=True)
        subprocess.run(["mount", "-t", "tmpfs", "lab-netns", str(NETNS_DIR)], check=True)
        _ip("link", "set", "lo", "up")
        _ip("link", "add", BRIDGE, "type", "bridge")
        _ip("addr", "add", f"{SUBNET}.1/24", "dev", BRIDGE)
        _ip("link", "set", BRIDGE, "up")

    def add_host(self, name: str, number: int) -> Host:
        """A namespace ``name`` at 10.77.0.<number>, cabled to the bridge, with its loopback up."""
        _ip("netns", "add", name)
        outside = f"vl-{name}"[:15]
        _ip("link", "add", outside, "type", "veth", "peer", "name", "eth0", "netns", name)
        _ip("link", "set", outside, "master", BRIDGE, "up")
        _ip("-n", name, "addr", "add", f"{SUBNET}.{number}/24", "dev", "eth0")
        _ip("-n", name, "link", "set", "eth0", "up")
        _ip("-n", name, "link", "set", "lo", "up")
        host = Host(name, f"{SUBNET}.{number}", self.logs)
        self.hosts[name] = host
        return host

    def close(self) -> None:
        for cleanup in reversed(self.cleanups):
            with contextlib.suppress(Exception):
                cleanup()
        for host in self.hosts.values():
            for process in host.processes:
                process.kill()


def wait_until(check: Callable[[], bool], *, what: str, timeout_s: float, process: Process | None = None) -> None:
    """Poll ``check`` until true; fail with ``what`` and the process's log when it dies or time runs out. The
    deadline only keeps a broken service from hanging the suite."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if process is not None and not process.alive():
            raise LabError(f"{what}: {process.name} exited {process.popen.returncode}\n{tail(process.log)}")
        with contextlib.suppress(Exception):
            if check():
                return
        time.sleep(0.5)
    log = tail(process.log) if process is not None else ""
    raise LabError(f"{what}: not within {timeout_s:.0f} s\n{log}")


def http_ok(url: str) -> Callable[[], bool]:
    return lambda: httpx.get(url, timeout=3).status_code == 200
