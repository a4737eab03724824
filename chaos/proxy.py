"""A fault-injecting TCP proxy for one link (this kernel has no ``tc netem``).

Faults, each healed by ``heal()``:

- ``blackhole(direction)``: bytes stop flowing (in one direction or both) and new
  connections are left unaccepted in the listen backlog, like a network that
  drops every packet: nothing is lost or reordered, peers see silence and time out.
- ``delay(seconds, jitter, direction)``: every chunk waits before it is forwarded
  (a normal draw around ``seconds``, never negative; order is kept). Delays are
  pipelined, as on a wire: a busy link is as slow as an idle one, not slower.
- ``drop(rate, direction, rto)``: each chunk is lost with probability ``rate`` and,
  as TCP would, sent again after a retransmission timeout that doubles with each
  loss in a row: a lossy link is a slow, bursty one, never a corrupted stream.
- ``reset()``: every open connection is cut with a TCP reset.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import enum
import logging
import random
import socket
import struct

log = logging.getLogger("chaos.proxy")


class Direction(enum.StrEnum):
    UPSTREAM = "upstream"  # client -> target
    DOWNSTREAM = "downstream"  # target -> client
    BOTH = "both"


MAX_RETRANSMITS = 6
"""Losses in a row of one chunk before it goes through regardless (as TCP gives up
doubling its timeout and keeps retrying)."""
PIPELINE_CHUNKS = 256
"""Chunks read and waiting out their delay per direction of a connection, at most."""


@dataclasses.dataclass(frozen=True, slots=True)
class Impairment:
    """What one direction of the link does to each chunk: delay, jitter and loss."""

    delay: float = 0.0
    jitter: float = 0.0
    drop: float = 0.0
    """Probability that one transmission of a chunk is lost."""
    rto: float = 0.2
    """The first retransmission timeout after a loss, in seconds."""

    def wait(self, rng: random.Random) -> float:
        """How long the next chunk is held before it is forwarded."""
        wait = max(0.0, rng.gauss(self.delay, self.jitter)) if self.jitter else self.delay
        timeout = self.rto
        for _ in range(MAX_RETRANSMITS):
            if not self.drop or rng.random() >= self.drop:
                break
            wait += timeout
            timeout *= 2
        return wait


CLEAR = Impairment()


class FaultProxy:
    """Listens on ``listen`` and forwards each connection to ``target``."""

    def __init__(
        self, target: str, *, listen_host: str = "127.0.0.1", listen_port: int = 0, name: str = ""
    ) -> None:
        host, port = target.rsplit(":", 1)
        self.target = (host, int(port))
        self.name = name or f"proxy->{target}"
        self._listen_host = listen_host
        self._listen_port = listen_port
        self._server_sock: socket.socket | None = None
        self._accept_task: asyncio.Task[None] | None = None
        self._accepting = asyncio.Event()
        self._accepting.set()
        self._flow = {Direction.UPSTREAM: asyncio.Event(), Direction.DOWNSTREAM: asyncio.Event()}
        for gate in self._flow.values():
            gate.set()
        self._impairments = {Direction.UPSTREAM: CLEAR, Direction.DOWNSTREAM: CLEAR}
        self._rng = random.Random()
        self.connections = 0
        """Connections accepted since the start."""
        self._links: set[tuple[asyncio.StreamWriter, asyncio.StreamWriter]] = set()
        self._tasks: set[asyncio.Task[None]] = set()

    @property
    def address(self) -> str:
        assert self._server_sock is not None, "start() the proxy first"
        host, port = self._server_sock.getsockname()[:2]
        return f"{host}:{port}"

    async def start(self) -> FaultProxy:
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((self._listen_host, self._listen_port))
        sock.listen(128)
        sock.setblocking(False)
        self._server_sock = sock
        self._accept_task = asyncio.create_task(self._accept_loop(), name=f"{self.name}-accept")
        return self

    # faults

    def blackhole(self, direction: Direction = Direction.BOTH) -> None:
        log.info("%s: blackhole %s", self.name, direction.value)
        for side in self._sides(direction):
            self._flow[side].clear()
        if direction is Direction.BOTH:
            self._accepting.clear()

    def delay(
        self, seconds: float, jitter: float = 0.0, direction: Direction = Direction.BOTH
    ) -> None:
        log.info("%s: delay %s %.3fs +- %.3fs", self.name, direction.value, seconds, jitter)
        for side in self._sides(direction):
            self._impairments[side] = dataclasses.replace(
                self._impairments[side], delay=seconds, jitter=jitter
            )

    def drop(self, rate: float, direction: Direction = Direction.BOTH, rto: float = 0.2) -> None:
        log.info("%s: drop %s %.0f%% (rto %.3fs)", self.name, direction.value, rate * 100, rto)
        for side in self._sides(direction):
            self._impairments[side] = dataclasses.replace(
                self._impairments[side], drop=rate, rto=rto
            )

    def impairment(self, side: Direction) -> Impairment:
        """What the link does now to chunks going ``side`` (UPSTREAM or DOWNSTREAM)."""
        return self._impairments[side]

    @property
    def blackholed(self) -> set[Direction]:
        """The directions where bytes do not flow now."""
        return {side for side, gate in self._flow.items() if not gate.is_set()}

    def reset(self) -> None:
        """Cut every open connection with a TCP reset."""
        log.info("%s: reset %d connections", self.name, len(self._links))
        for client, upstream in list(self._links):
            for writer in (client, upstream):
                _abort(writer)

    def heal(self) -> None:
        log.info("%s: healed", self.name)
        self._impairments = {side: CLEAR for side in self._impairments}
        for gate in self._flow.values():
            gate.set()
        self._accepting.set()

    async def close(self) -> None:
        if self._accept_task is not None:
            self._accept_task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._accept_task
        if self._server_sock is not None:
            self._server_sock.close()
        self.heal()
        self.reset()
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)

    # plumbing

    @staticmethod
    def _sides(direction: Direction) -> tuple[Direction, ...]:
        if direction is Direction.BOTH:
            return (Direction.UPSTREAM, Direction.DOWNSTREAM)
        return (direction,)

    async def _accept_loop(self) -> None:
        loop = asyncio.get_running_loop()
        assert self._server_sock is not None
        while True:
            await self._accepting.wait()
            client_sock, _ = await loop.sock_accept(self._server_sock)
            self.connections += 1
            task = asyncio.create_task(self._serve(client_sock), name=f"{self.name}-link")
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    async def _serve(self, client_sock: socket.socket) -> None:
        client_reader, client_writer = await asyncio.open_connection(sock=client_sock)
        try:
            up_reader, up_writer = await asyncio.open_connection(*self.target)
        except OSError:
            _abort(client_writer)
            return
        except asyncio.CancelledError:
            # closed while dialling a target that does not accept (a stopped process
            # whose backlog is full): the client's side must not be left open
            client_writer.close()
            raise
        link = (client_writer, up_writer)
        self._links.add(link)
        try:
            async with asyncio.TaskGroup() as pumps:
                pumps.create_task(
                    self._pump(client_reader, up_writer, Direction.UPSTREAM),
                    name=f"{self.name}-upstream",
                )
                pumps.create_task(
                    self._pump(up_reader, client_writer, Direction.DOWNSTREAM),
                    name=f"{self.name}-downstream",
                )
        except* (OSError, asyncio.IncompleteReadError):
            pass  # a peer closed or reset the link: close the other side too
        finally:
            self._links.discard(link)
            for writer in link:
                writer.close()

    async def _pump(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, side: Direction
    ) -> None:
        """Forward one direction: a reader stamps each chunk with when it is due, a
        forwarder writes it then. Latency is pipelined as on a wire (a chunk waits its
        delay from when it was read, not behind the delays of the chunks before it);
        order is kept, so a chunk held longer (jitter, a retransmission) holds the ones
        after it, as TCP's in-order delivery does."""
        queue: asyncio.Queue[tuple[float, bytes] | None] = asyncio.Queue(PIPELINE_CHUNKS)
        async with asyncio.TaskGroup() as tasks:  # either failing stops both
            tasks.create_task(
                self._read(reader, queue, side), name=f"{self.name}-{side.value}-read"
            )
            tasks.create_task(
                self._forward(queue, writer, self._flow[side]),
                name=f"{self.name}-{side.value}-forward",
            )

    async def _read(
        self,
        reader: asyncio.StreamReader,
        queue: asyncio.Queue[tuple[float, bytes] | None],
        side: Direction,
    ) -> None:
        gate = self._flow[side]
        loop = asyncio.get_running_loop()
        due = 0.0
        while True:
            await gate.wait()
            data = await reader.read(65536)
            if not data:
                await queue.put(None)
                return
            due = max(due, loop.time() + self._impairments[side].wait(self._rng))
            await queue.put((due, data))

    @staticmethod
    async def _forward(
        queue: asyncio.Queue[tuple[float, bytes] | None],
        writer: asyncio.StreamWriter,
        gate: asyncio.Event,
    ) -> None:
        loop = asyncio.get_running_loop()
        try:
            while (item := await queue.get()) is not None:
                due, data = item
                wait = due - loop.time()
                if wait > 0:
                    await asyncio.sleep(wait)
                await gate.wait()  # what was read before a blackhole is held, not lost
                writer.write(data)
                await writer.drain()
        finally:
            with contextlib.suppress(OSError):
                if writer.can_write_eof():
                    writer.write_eof()


def _abort(writer: asyncio.StreamWriter) -> None:
    sock = writer.get_extra_info("socket")
    if sock is not None:
        with contextlib.suppress(OSError):
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    transport = writer.transport
    transport.abort()
