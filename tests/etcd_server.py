"""A real single-member etcd for tests, and the KV conformance harness on top of it.

Wiring it into a conftest::

    @pytest.fixture(scope="session")
    def etcd_server(tmp_path_factory):
        yield from started_etcd(tmp_path_factory)

    @pytest.fixture
    async def etcd_harness(etcd_server):
        harness = EtcdHarness(etcd_server)
        yield harness
        await harness.close()

Every process started here is ended by its own PID.
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import signal
import ssl
import subprocess
import tempfile
import urllib.error
import urllib.request
import uuid
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from election.etcd_access import EtcdAccess
from election.etcd_keys import leader_key
from election.guard import Guard
from ha_sc.kv.api import KeyExists, KvStore
from ha_sc.kv.etcd import EtcdKv
from ha_sc.kv.etcd_limits import MANAGED_SERVER
from tests.etcd_certs import CertPair, TestCa
from tests.net import free_port
from tests.waiting import eventually_sync

if TYPE_CHECKING:
    import pytest

ETCD_BINARY = Path("/usr/bin/etcd")
ETCDCTL_BINARY = Path("/usr/bin/etcdctl")
ELECTION_KIND = leader_key("", "").rstrip("/")  # leader keys are KV objects of this kind
START_TIMEOUT = 20.0
STOP_TIMEOUT = 10.0
PORT_ATTEMPTS = 3


_DIRECT = urllib.request.build_opener(urllib.request.ProxyHandler({}))  # never via a proxy


class EtcdMissing(RuntimeError):
    """The etcd binary these tests need is not installed."""


class PortTaken(RuntimeError):
    """Another process bound a port chosen for etcd before etcd could."""


@dataclass(frozen=True, slots=True)
class EtcdTls:
    """TLS of a test etcd: a server (and peer) certificate, and the client certificate
    that tests, health checks and etcdctl present; ``client_cert_auth`` makes etcd refuse
    clients without a certificate of the CA."""

    ca: Path
    server: CertPair
    client: CertPair
    client_cert_auth: bool = True

    @classmethod
    def made_in(cls, directory: Path, *, client_cert_auth: bool = True) -> EtcdTls:
        ca = TestCa(directory)
        return cls(ca.cert, ca.issue("etcd-server"), ca.issue("root"), client_cert_auth)

    def access(self, endpoints: list[str], *, client_cert: bool = True) -> EtcdAccess:
        """How a client reaches the TLS etcd at ``endpoints``, with or without a certificate."""
        pair = self.client if client_cert else None
        return EtcdAccess(
            endpoints=tuple(endpoints),
            ca_file=self.ca,
            cert_file=None if pair is None else pair.cert,
            key_file=None if pair is None else pair.key,
        )

    def flags(self) -> list[str]:
        """etcd's flags for TLS on its client and peer URLs."""
        flags = [
            f"--cert-file={self.server.cert}",
            f"--key-file={self.server.key}",
            f"--peer-cert-file={self.server.cert}",
            f"--peer-key-file={self.server.key}",
            f"--peer-trusted-ca-file={self.ca}",
            "--peer-client-cert-auth",
        ]
        if self.client_cert_auth:
            flags += [f"--trusted-ca-file={self.ca}", "--client-cert-auth"]
        return flags

    def etcdctl_flags(self) -> list[str]:
        return [f"--cacert={self.ca}", f"--cert={self.client.cert}", f"--key={self.client.key}"]

    def ssl_context(self) -> ssl.SSLContext:
        context = ssl.create_default_context(cafile=str(self.ca))
        context.load_cert_chain(self.client.cert, self.client.key)
        return context


class EtcdServer:
    """One etcd member on loopback ports, with its data and log under ``base_dir``.

    With ``tls`` its client and peer URLs are https. A member of a cluster is given
    its ``name`` and the cluster's ``--initial-cluster`` (see ``EtcdCluster``).
    """

    def __init__(
        self,
        base_dir: Path | None = None,
        *,
        tls: EtcdTls | None = None,
        name: str = "default",
        flags: Sequence[str] = (),
    ) -> None:
        missing = [str(path) for path in (ETCD_BINARY, ETCDCTL_BINARY) if not path.exists()]
        if missing:
            raise EtcdMissing(
                f"{', '.join(missing)} not found: install etcd (Debian/Ubuntu: apt-get install "
                "etcd-server etcd-client); the etcd tests need a real server"
            )
        self._owns_dir = base_dir is None
        self.base_dir = base_dir or Path(tempfile.mkdtemp(prefix="etcd-test-"))
        self.data_dir = self.base_dir / "data"
        self.log_path = self.base_dir / "etcd.log"
        self.client_port = free_port()
        self.peer_port = free_port()
        self.tls = tls
        self.name = name
        self.flags = list(flags)
        """More etcd flags, after (so over) MANAGED_SERVER's limits."""
        self.initial_cluster = ""
        """``name=peer-url,...`` of every member; empty: this member alone."""
        self._process: subprocess.Popen[bytes] | None = None
        self._started = False

    @property
    def endpoint(self) -> str:
        return f"127.0.0.1:{self.client_port}"

    @property
    def scheme(self) -> str:
        return "http" if self.tls is None else "https"

    @property
    def url(self) -> str:
        return f"{self.scheme}://{self.endpoint}"

    @property
    def peer_url(self) -> str:
        return f"{self.scheme}://127.0.0.1:{self.peer_port}"

    @property
    def pid(self) -> int | None:
        return None if self._process is None else self._process.pid

    def start(self) -> None:
        """Start etcd and wait until it reports healthy.

        The first start picks new ports if another process took the chosen
        ones in the meantime; later starts keep them, as a restart must.
        """
        for attempt in range(PORT_ATTEMPTS):
            try:
                self._start_once()
                self._started = True
                return
            except PortTaken:
                if self._started or attempt == PORT_ATTEMPTS - 1:
                    raise
                self.client_port, self.peer_port = free_port(), free_port()

    def pause(self) -> None:
        """SIGSTOP: the member hangs with its connections open. Returns once every
        thread of it has stopped: on a loaded machine a signalled process can run on,
        and answer a request sent after the signal, for a good part of a second."""
        self._signal(signal.SIGSTOP)
        process = self._process
        assert process is not None
        eventually_sync(
            lambda: _all_threads_stopped(process.pid),
            timeout=START_TIMEOUT,
            what=f"every thread of etcd {self.endpoint} stopped",
        )

    def resume(self) -> None:
        """SIGCONT after ``pause``."""
        self._signal(signal.SIGCONT)

    def stop(self) -> None:
        """SIGTERM, then SIGKILL if etcd has not exited within the stop timeout."""
        process = self._process
        if process is None or process.poll() is not None:
            return
        os.kill(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=STOP_TIMEOUT)
        except subprocess.TimeoutExpired:
            self.kill()

    def kill(self) -> None:
        """SIGKILL: the member dies without a chance to clean up."""
        process = self._process
        if process is None or process.poll() is not None:
            return
        os.kill(process.pid, signal.SIGKILL)
        process.wait(timeout=STOP_TIMEOUT)

    def restart(self) -> None:
        """Stop (if running) and start again on the same data dir and ports."""
        self.stop()
        self.start()

    def destroy(self) -> None:
        """Stop etcd and remove the directory this server created."""
        self.stop()
        if self._owns_dir:
            shutil.rmtree(self.base_dir, ignore_errors=True)

    def compact(self, revision: int) -> None:
        """Compact the history up to ``revision``; watches from before it fail."""
        self.etcdctl("compact", str(revision), "--physical")

    def etcdctl(self, *args: str, stdin: bytes | None = None) -> str:
        """Run etcdctl (API v3) against this server; returns its stdout."""
        result = subprocess.run(
            [str(ETCDCTL_BINARY), f"--endpoints={self.url}", *self._etcdctl_tls(), *args],
            input=stdin,
            capture_output=True,
            env={**os.environ, "ETCDCTL_API": "3"},
            timeout=STOP_TIMEOUT,
            check=False,
        )
        if result.returncode != 0:
            raise RuntimeError(
                f"etcdctl {' '.join(args)} failed ({result.returncode}): "
                f"{result.stderr.decode(errors='replace').strip()}"
            )
        return result.stdout.decode()

    def log_tail(self, lines: int = 30) -> str:
        try:
            text = self.log_path.read_text(errors="replace")
        except FileNotFoundError:
            return "(no log written)"
        return "\n".join(text.splitlines()[-lines:])

    def _etcdctl_tls(self) -> list[str]:
        return [] if self.tls is None else self.tls.etcdctl_flags()

    def _command(self) -> list[str]:
        peer_url = self.peer_url
        return [
            str(ETCD_BINARY),
            f"--name={self.name}",
            f"--data-dir={self.data_dir}",
            f"--listen-client-urls={self.url}",
            f"--advertise-client-urls={self.url}",
            f"--listen-peer-urls={peer_url}",
            f"--initial-advertise-peer-urls={peer_url}",
            f"--initial-cluster={self.initial_cluster or f'{self.name}={peer_url}'}",
            "--initial-cluster-state=new",
            "--heartbeat-interval=50",
            "--election-timeout=500",
            *MANAGED_SERVER.flags(),
            *self.flags,
            *([] if self.tls is None else self.tls.flags()),
        ]

    def _start_once(self) -> None:
        self.launch()
        self.wait_healthy()

    def launch(self) -> None:
        """Start the process without waiting (a cluster member is healthy only with a
        majority of its cluster up)."""
        if self._process is not None and self._process.poll() is None:
            raise RuntimeError(f"etcd {self.endpoint} is already running")
        self.data_dir.mkdir(parents=True, exist_ok=True)
        with self.log_path.open("ab") as log:
            self._process = subprocess.Popen(
                self._command(), stdout=log, stderr=subprocess.STDOUT, start_new_session=True
            )

    def _signal(self, signum: signal.Signals) -> None:
        process = self._process
        if process is None or process.poll() is not None:
            raise RuntimeError(f"etcd {self.endpoint} is not running")
        os.kill(process.pid, signum)

    def wait_healthy(self) -> None:
        try:
            eventually_sync(
                self._healthy_or_raise,
                timeout=START_TIMEOUT,
                interval=0.05,
                what=f"etcd {self.endpoint}",
            )
        except AssertionError:
            pid = self.pid
            self.kill()
            raise RuntimeError(
                f"etcd {self.endpoint} (pid {pid}) not healthy after {START_TIMEOUT:.0f} s; "
                f"log tail:\n{self.log_tail()}"
            ) from None

    def _healthy_or_raise(self) -> bool:
        """Healthy yet; raises if the process ended while starting."""
        if self._process is not None and self._process.poll() is not None:
            tail = self.log_tail()
            if "address already in use" in tail:
                raise PortTaken(f"etcd {self.endpoint}: port taken")
            raise RuntimeError(
                f"etcd exited with {self._process.returncode} while starting; log tail:\n{tail}"
            )
        return self._healthy()

    def _healthy(self) -> bool:
        try:
            with self._opener().open(f"{self.url}/health", timeout=1.0) as response:
                return b'"true"' in response.read()
        except (urllib.error.URLError, OSError):
            return False

    def _opener(self) -> urllib.request.OpenerDirector:
        if self.tls is None:
            return _DIRECT
        https = urllib.request.HTTPSHandler(context=self.tls.ssl_context())
        return urllib.request.build_opener(urllib.request.ProxyHandler({}), https)


class EtcdCluster:
    """``size`` etcd members on loopback, each with ports of its own, started together.

    ``tls``: client and peer traffic over TLS with certificates of one test CA.
    """

    def __init__(self, base_dir: Path, *, size: int = 3, tls: EtcdTls | None = None) -> None:
        self.tls = tls
        self.members = [
            EtcdServer(base_dir / f"m{index}", tls=tls, name=f"m{index}")
            for index in range(1, size + 1)
        ]
        initial = ",".join(f"{member.name}={member.peer_url}" for member in self.members)
        for member in self.members:
            member.initial_cluster = initial

    @property
    def endpoints(self) -> list[str]:
        return [member.endpoint for member in self.members]

    @property
    def urls(self) -> list[str]:
        return [member.url for member in self.members]

    def start(self) -> None:
        """Start every member, then wait until each is healthy; a failure stops them all."""
        try:
            for member in self.members:
                member.launch()
            for member in self.members:
                member.wait_healthy()
        except BaseException:
            self.stop()
            raise

    def stop(self) -> None:
        for member in self.members:
            member.stop()

    def leader(self) -> int:
        """Index of the member that leads the cluster's Raft group now."""
        ids, leader = [], None
        for member in self.members:
            (status,) = json.loads(member.etcdctl("endpoint", "status", "-w", "json"))
            ids.append(status["Status"]["header"]["member_id"])
            leader = status["Status"]["leader"]
        return ids.index(leader)

    def hand_leadership_to(self, index: int) -> None:
        """Make member ``index`` the cluster's leader (no-op if it leads already)."""
        current = self.leader()
        if current == index:
            return
        target = self.members[index]
        (status,) = json.loads(target.etcdctl("endpoint", "status", "-w", "json"))
        member_id = status["Status"]["header"]["member_id"]
        self.members[current].etcdctl("move-leader", f"{member_id:x}")


@contextmanager
def running(server: EtcdServer) -> Iterator[EtcdServer]:
    """``server`` started, and stopped on leaving."""
    server.start()
    try:
        yield server
    finally:
        server.stop()


def started_etcd(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EtcdServer]:
    """A running etcd for the duration of the generator; wrap it in a fixture."""
    with running(EtcdServer(tmp_path_factory.mktemp("etcd"))) as server:
        yield server


class EtcdHarness:
    """KvHarness for the conformance suite: a fresh root per harness on a shared server.

    A leader key ``<root>election/<name>`` is the KV object of kind ``election``,
    so the harness claims and drops it through the KV API itself.
    """

    name = "etcd"

    def __init__(self, server: EtcdServer) -> None:
        self.server = server
        self.root = f"/t-{uuid.uuid4().hex[:12]}/"
        self.kv = EtcdKv([server.endpoint], root=self.root)
        self._others: list[EtcdKv] = []

    async def current_guard(self, election: str) -> Guard:
        """Whoever holds ``election`` now (a new holder if nobody does)."""
        try:
            epoch = await self.kv.create(ELECTION_KIND, election, b"test-holder")
        except KeyExists:
            holder = await self.kv.get(ELECTION_KIND, election)
            if holder is None:  # released in between: claim it again
                return await self.current_guard(election)
            epoch = holder.create_revision
        return Guard(election, epoch)

    async def supersede(self, guard: Guard) -> Guard:
        """Delete the leader key and create it again: the new create revision is the new epoch."""
        await self.kv.delete(ELECTION_KIND, guard.election)
        return await self.current_guard(guard.election)

    async def force_compaction(self) -> None:
        """Compact the server's history up to now (every root on the server shares it)."""
        revision = (await self.kv.list(ELECTION_KIND)).revision
        await asyncio.to_thread(self.server.compact, revision)

    async def open_another(self) -> KvStore:
        other = EtcdKv([self.server.endpoint], root=self.root)
        self._others.append(other)
        return other

    async def close(self) -> None:
        others, self._others = self._others, []
        await asyncio.gather(*(other.close() for other in others))
        await self.kv.close()


def _all_threads_stopped(pid: int) -> bool:
    """Whether each thread of process ``pid`` is in the stopped state (``T``)."""
    states = []
    for stat in Path(f"/proc/{pid}/task").glob("*/stat"):
        try:
            states.append(stat.read_text().rsplit(") ", 1)[1][:1])
        except (FileNotFoundError, IndexError):
            continue  # a thread that ended
    return bool(states) and all(state in "Tt" for state in states)
