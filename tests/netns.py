"""Hosts for multi-host tests: one network namespace each, joined by a bridge.

A ``Network`` of N hosts is N namespaces (``hasc-<pid>-<n>-h1``...), each with ``lo``
up and an ``eth0`` whose peer is a port of a bridge living in a namespace of its own
(``hasc-<pid>-<n>-br``); addresses come from a private /24 that the root namespace
does not route yet (``10.231.<k>.0/24``). The test process itself, in the root
namespace, is one more port of that bridge (a veth ``hasc<pid>n<n>`` with address
``.254``), so its clients reach every host and nothing else of the machine's network
changes. A host's ``link_down`` sets its ``eth0`` down: a partition of that host from
every other host and from the test::

    with Network(3) as net:
        proc = net.hosts[0].run(["etcd", ...])
        net.hosts[0].link_down()

Leaving the context SIGKILLs (by PID) every process a host started and deletes every
namespace and link the network made, also after a failure; ``sweep`` deletes what a
run with this prefix left behind (a session finalizer calls it). It needs root and
``ip`` (iproute2): without them ``require_hosts`` fails the test, naming what is
missing (these tests run as root in CI and must not be skipped there).
"""

from __future__ import annotations

import ipaddress
import itertools
import os
import shutil
import signal
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path
from types import TracebackType
from typing import IO, Self

import pytest

PREFIX = f"hasc-{os.getpid()}-"
"""Every namespace this test run makes starts with it."""
ROOT_LINK_PREFIX = f"hasc{os.getpid()}n"
"""Every link this run adds to the root namespace starts with it (15 bytes at most)."""
IP_TIMEOUT = 10.0
STOP_TIMEOUT = 10.0
SUBNETS = range(20, 250)
"""Candidates for ``k`` in 10.231.k.0/24."""

_networks = itertools.count(1)


def require_hosts() -> None:
    """Fail (not skip) the calling test when namespaces cannot be made here."""
    if shutil.which("ip") is None:
        pytest.fail("multi-host tests need `ip` from iproute2 (apt-get install iproute2)")
    if os.geteuid() != 0:
        pytest.fail(
            "multi-host tests make network namespaces and need root "
            f"(running as uid {os.geteuid()}): run them as root, as CI does"
        )


def ip(*args: str) -> str:
    """Run ``ip``; its stdout. A failure raises, with ip's own message."""
    result = subprocess.run(
        ["ip", *args], capture_output=True, timeout=IP_TIMEOUT, check=False, text=True
    )
    if result.returncode != 0:
        raise RuntimeError(f"ip {' '.join(args)} failed: {result.stderr.strip()}")
    return result.stdout


def free_subnet() -> str:
    """``10.231.k`` for a /24 that no route of the root namespace covers yet."""
    return choose_subnet(ip("-4", "route", "show", "table", "all"), os.getpid())


ROUTE_TYPES = frozenset(
    {"unicast", "local", "broadcast", "multicast", "anycast", "blackhole", "unreachable",
     "prohibit", "throw", "nat"}
)  # fmt: skip
"""Words ``ip route`` may print before a route's destination."""
BROADEST_AVOIDED = 16
"""Routes of this prefix length or longer are networks in use here; broader ones (a
default route, a 10.0.0.0/8 to a VPN) are left to the more specific test /24."""


def choose_subnet(routes: str, seed: int) -> str:
    """``10.231.k`` (k from ``SUBNETS``, starting at one picked by ``seed``) whose /24
    overlaps no route of ``routes`` (``ip -4 route show table all``) at least as
    specific as ``BROADEST_AVOIDED``."""
    used = []
    for line in routes.splitlines():
        words = line.split()
        if not words:
            continue
        destination = words[1] if words[0] in ROUTE_TYPES and len(words) > 1 else words[0]
        if destination == "default":
            continue
        network = ipaddress.ip_network(destination, strict=False)
        if network.prefixlen >= BROADEST_AVOIDED:
            used.append(network)
    start = seed % len(SUBNETS)
    for index in range(len(SUBNETS)):
        k = SUBNETS[(start + index) % len(SUBNETS)]
        candidate = ipaddress.ip_network(f"10.231.{k}.0/24")
        if not any(candidate.overlaps(network) for network in used):
            return f"10.231.{k}"
    raise RuntimeError("no free 10.231.k.0/24 for a test network: every one is routed here")


class Host:
    """One namespace with one address."""

    def __init__(self, namespace: str, address: str) -> None:
        self.namespace = namespace
        self.address = address
        self.procs: list[subprocess.Popen[bytes]] = []

    def run(self, argv: Sequence[str], *, log: IO[bytes] | None = None) -> subprocess.Popen[bytes]:
        """Start ``argv`` inside this host (``ip netns exec`` execs it: same PID)."""
        proc = subprocess.Popen(
            ["ip", "netns", "exec", self.namespace, *argv],
            stdout=log or subprocess.DEVNULL,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
        )
        self.procs.append(proc)
        return proc

    def command(self, argv: Sequence[str]) -> list[str]:
        """``argv`` as a command line that runs inside this host."""
        return ["ip", "netns", "exec", self.namespace, *argv]

    def fetch(self, url: str, *, timeout: float = 2.0) -> bytes | None:
        """GET ``url`` from inside this host (as a client on it would); the body, or
        None if there is no answer."""
        script = (
            "import sys,urllib.request\n"
            "opener=urllib.request.build_opener(urllib.request.ProxyHandler({}))\n"
            "sys.stdout.buffer.write(opener.open(sys.argv[1],timeout=float(sys.argv[2])).read())\n"
        )
        return self.python(script, url, str(timeout), timeout=timeout + IP_TIMEOUT)

    def python(self, script: str, *args: str, timeout: float) -> bytes | None:
        """Run a Python ``script`` inside this host, bounded in time; its stdout, or None
        if it failed."""
        result = subprocess.run(
            self.command([sys.executable, "-c", script, *args]),
            capture_output=True,
            timeout=timeout,
            check=False,
        )
        return result.stdout if result.returncode == 0 else None

    def link_down(self) -> None:
        """Cut this host off the bridge: no packet in or out until ``link_up``."""
        ip("-n", self.namespace, "link", "set", "eth0", "down")

    def link_up(self) -> None:
        """Heal the cut (the kernel restores the subnet's route with the link)."""
        ip("-n", self.namespace, "link", "set", "eth0", "up")

    def kill_all(self) -> None:
        """SIGKILL every process started here that still runs, by its PID, and reap it."""
        for proc in self.procs:
            if proc.poll() is None:
                os.kill(proc.pid, signal.SIGKILL)
            proc.wait(STOP_TIMEOUT)


class Network:
    """N hosts on one bridge, and the test process's own port on it."""

    def __init__(self, hosts: int) -> None:
        require_hosts()
        number = next(_networks)
        self.name = f"{PREFIX}{number}"
        self.bridge = f"{self.name}-br"
        self.root_link = f"{ROOT_LINK_PREFIX}{number}"
        self.subnet = free_subnet()
        self.hosts = [Host(f"{self.name}-h{i}", f"{self.subnet}.{i}") for i in range(1, hosts + 1)]
        self.made: list[str] = []
        """Namespaces made so far, deleted on exit."""

    def __enter__(self) -> Self:
        try:
            self._make()
        except BaseException:
            self.close()
            raise
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def _namespace(self, name: str) -> None:
        ip("netns", "add", name)
        self.made.append(name)
        ip("-n", name, "link", "set", "lo", "up")

    def _make(self) -> None:
        self._namespace(self.bridge)
        ip("-n", self.bridge, "link", "add", "br0", "type", "bridge")
        ip("-n", self.bridge, "link", "set", "br0", "up")
        for index, host in enumerate(self.hosts, start=1):
            self._namespace(host.namespace)
            port = f"h{index}"
            ip("link", "add", "eth0", "netns", host.namespace, "type", "veth",
               "peer", "name", port, "netns", self.bridge)  # fmt: skip
            ip("-n", self.bridge, "link", "set", port, "master", "br0", "up")
            ip("-n", host.namespace, "addr", "add", f"{host.address}/24", "dev", "eth0")
            ip("-n", host.namespace, "link", "set", "eth0", "up")
        ip("link", "add", self.root_link, "type", "veth",
           "peer", "name", "root", "netns", self.bridge)  # fmt: skip
        ip("-n", self.bridge, "link", "set", "root", "master", "br0", "up")
        ip("addr", "add", f"{self.subnet}.254/24", "dev", self.root_link)
        ip("link", "set", self.root_link, "up")

    def close(self) -> None:
        """Kill what the hosts started, delete the root link and every namespace made."""
        errors: list[str] = []
        for host in self.hosts:
            try:
                host.kill_all()
            except (OSError, subprocess.SubprocessError) as failed:
                errors.append(f"{host.namespace}: {failed}")
        if _link_exists(self.root_link):
            ip("link", "del", self.root_link)
        for name in reversed(self.made):
            try:
                ip("netns", "del", name)
            except RuntimeError as failed:
                errors.append(str(failed))
        self.made.clear()
        if errors:
            raise RuntimeError("test network not fully removed: " + "; ".join(errors))


def _link_exists(name: str) -> bool:
    return Path("/sys/class/net", name).exists()


def sweep() -> list[str]:
    """Delete every namespace and root link of this run that is still there; their names."""
    if shutil.which("ip") is None or os.geteuid() != 0:
        return []
    left = [line.split()[0] for line in ip("netns", "list").splitlines() if line.strip()]
    mine = [name for name in left if name.startswith(PREFIX)]
    for name in mine:
        ip("netns", "del", name)
    links = [
        p.name for p in Path("/sys/class/net").iterdir() if p.name.startswith(ROOT_LINK_PREFIX)
    ]
    for link in links:
        ip("link", "del", link)
    return mine + links
