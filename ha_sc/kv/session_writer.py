"""Sending a Raft KV write until it is answered, under one client-session tag.

The writer's half of exactly-once writes (the state machine's half is
ha_sc.kv.session_table): a write takes the next sequence number of the client
session and keeps its tag over every send, so sending it again after any failure
(LEADER_CHANGED, UNKNOWN_OUTCOME, a reconnect, no answer in time) is safe.
"""

from __future__ import annotations

import asyncio
import copy
import logging
import time
from collections.abc import Callable
from typing import Any

from election.raft_node import CommandNotCommitted, submit
from ha_sc.kv.api import KvError, KvUnavailable
from ha_sc.kv.client_session import ClientSession
from ha_sc.kv.session_table import AnswerForgotten, SessionExpired

log = logging.getLogger(__name__)

RESEND_PAUSE = 0.05
"""Seconds between a failed send of a write and the next."""


class SessionWriter:
    """One node's client session, and the policy for sending its writes."""

    def __init__(
        self, name: str, *, commit_timeout: float, resend_after: float, client: str | None = None
    ) -> None:
        self.name = name
        self.commit_timeout = commit_timeout
        self.resend_after = resend_after
        self.session = ClientSession(client)
        self.resent = 0
        """Writes sent more than once (each applied once all the same)."""

    async def write(self, method: Callable[..., Any], *args: Any) -> int:
        """Run ``method(*args, tag)`` as a Raft command until answered or ``commit_timeout``;
        return the revision it answered, raise the KvError it answered, or KvUnavailable."""
        answer = await self.send(method, *args)
        assert isinstance(answer, int), f"a write answered {answer!r}"
        return answer

    async def write_batch(self, method: Callable[..., Any], *args: Any) -> list[int | KvError]:
        """As ``write``, for a command that answers one revision or KvError per op."""
        answer = await self.send(method, *args)
        assert isinstance(answer, list), f"a batch answered {answer!r}"
        # copies, as in ``send``: the state machine keeps the answers themselves
        return [copy.copy(a) if isinstance(a, KvError) else int(a) for a in answer]

    async def send(self, method: Callable[..., Any], *args: Any) -> object:
        """Run ``method(*args, tag)`` until answered or ``commit_timeout``; return what it
        answered, raise the KvError it answered, or KvUnavailable."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.commit_timeout
        session = self.session
        seq = session.begin()
        maybe_applied = False  # whether a copy sent before may have been applied
        sends = 0
        try:
            while True:
                sends += 1
                if sends == 2:
                    self.resent += 1
                wait = min(deadline - loop.time(), self.resend_after)
                tag = tuple(session.tag(seq, time.time()))
                try:
                    answer = await submit(method, *args, tag, timeout=max(wait, 0.001))
                except CommandNotCommitted as failed:
                    maybe_applied = maybe_applied or not failed.retryable
                    if loop.time() + RESEND_PAUSE >= deadline:
                        outcome = "it may have been applied" if maybe_applied else "not applied"
                        raise KvUnavailable(
                            f"{self.name}: write not answered within "
                            f"{self.commit_timeout:g}s ({failed}); {outcome}"
                        ) from None
                    await asyncio.sleep(RESEND_PAUSE)
                    continue
                if isinstance(answer, SessionExpired) and not maybe_applied:
                    # no copy of this write was applied: send it in a new session
                    session.end(seq)
                    session = self._renewed(session)
                    seq = session.begin()
                    continue
                break
        finally:
            session.end(seq)
        if isinstance(answer, SessionExpired | AnswerForgotten):
            raise KvUnavailable(f"{self.name}: {answer}")
        if isinstance(answer, KvError):
            # a copy: the state machine keeps the answer itself (in snapshots, for copies
            # of this write) and this thread's traceback must not hang on it
            raise copy.copy(answer)
        return answer

    def _renewed(self, expired: ClientSession) -> ClientSession:
        if self.session is expired:
            self.session = ClientSession()
            log.info(
                "%s: client session %s expired, writing as %s",
                self.name,
                expired.client,
                self.session.client,
            )
        return self.session
