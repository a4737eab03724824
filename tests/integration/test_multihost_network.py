"""The multi-host test network itself (``tests.netns``): hosts reach each other and the
test process, a cut host is unreachable until healed, and leaving the network after a
failure leaves no process, namespace or link behind."""

from __future__ import annotations

import socket
import sys
from pathlib import Path

import pytest

from tests.netns import Host, Network, ip
from tests.waiting import eventually_sync

pytestmark = [pytest.mark.netns, pytest.mark.usefixtures("netns_sweep")]

PORT = 7000
CONNECT_TIMEOUT = 1.0
ECHO = (
    "import socket,sys\n"
    "s=socket.create_server((sys.argv[1],int(sys.argv[2])))\n"
    "while True:\n"
    "    c,_=s.accept(); c.sendall(b'hello from '+sys.argv[1].encode()); c.close()\n"
)


def greeting(address: str) -> bytes | None:
    """What the echo server at ``address`` says, or None if it cannot be reached."""
    try:
        with socket.create_connection((address, PORT), timeout=CONNECT_TIMEOUT) as conn:
            return conn.recv(100)
    except OSError:
        return None


def greeting_from(host: Host, address: str) -> bytes | None:
    """What the echo server at ``address`` says to a client running inside ``host``."""
    client = (
        "import socket,sys\n"
        "c=socket.create_connection((sys.argv[1],int(sys.argv[2])),timeout=2)\n"
        "sys.stdout.buffer.write(c.recv(100))\n"
    )
    return host.python(client, address, str(PORT), timeout=10.0)


def namespaces() -> set[str]:
    return {line.split()[0] for line in ip("netns", "list").splitlines() if line.strip()}


def test_hosts_reach_each_other_and_a_cut_host_only_after_healing() -> None:
    with Network(3) as net:
        for host in net.hosts:
            host.run([sys.executable, "-c", ECHO, host.address, str(PORT)])
        first, second, third = net.hosts
        for host in net.hosts:
            expected = b"hello from " + host.address.encode()
            said = eventually_sync(
                lambda address=host.address: greeting(address),
                what=f"{host.namespace} answers the test",
            )
            assert said == expected
        assert greeting_from(first, second.address) == b"hello from " + second.address.encode()

        third.link_down()
        assert greeting(third.address) is None
        assert greeting_from(first, third.address) is None
        assert greeting_from(first, second.address) == b"hello from " + second.address.encode()

        third.link_up()
        eventually_sync(lambda: greeting(third.address), what="the healed host answers again")
        assert greeting_from(first, third.address) == b"hello from " + third.address.encode()


def test_leaving_after_a_failure_removes_processes_namespaces_and_links() -> None:
    started = []
    with pytest.raises(RuntimeError, match="the test failed here"), Network(2) as net:
        made = set(net.made)
        root_link = net.root_link
        started = [host.run(["sleep", "600"]) for host in net.hosts]
        assert made <= namespaces() and Path("/sys/class/net", root_link).exists()
        raise RuntimeError("the test failed here")
    assert all(proc.returncode is not None for proc in started)
    assert not made & namespaces()
    assert not Path("/sys/class/net", root_link).exists()


def test_without_root_the_test_fails_saying_so(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("os.geteuid", lambda: 1000)
    with pytest.raises(pytest.fail.Exception, match="need root"):
        Network(1)
