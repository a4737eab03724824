"""The spans the SC writes in the domain's words, as small helpers its layers call.

Attribute names: ``kind``, ``key``, ``epoch``, ``revision``, ``spu_id``, ``action``,
``controller``. Each helper costs a no-op span while tracing is off.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import Token

from opentelemetry import trace
from opentelemetry.context import Context, attach, detach
from opentelemetry.trace import Link, Span, SpanContext, Status, StatusCode

from ha_sc.telemetry.tracing_context import ORIGINS, as_parent, from_carrier, tracer

_TRACER = tracer("ha_sc")


@contextmanager
def fenced_write(
    op: str, kind: str, key: str, epoch: int, *, parent: Context | None = None
) -> Iterator[Span]:
    """One KV write fenced by ``epoch`` (``op``: create, update, delete), a child of
    ``parent`` (the current span by default). A refusal (a stale guard, a conflict)
    ends the span with an error status giving the reason; a write that lands becomes
    the origin of ``kind/key``. The caller may set ``revision`` on the span."""
    span = _TRACER.start_span(  # not made current: nothing below it makes spans
        f"kv {op} {kind}/{key}",
        context=parent,
        attributes={"kind": kind, "key": key, "epoch": epoch, "action": op},
    )
    before = ORIGINS.last(kind, key)
    ORIGINS.remember(kind, key, span)  # now: the watch may bring it before the KV answers
    try:
        yield span
    except BaseException as refused:
        span.set_status(Status(StatusCode.ERROR, f"{type(refused).__name__}: {refused}"))
        ORIGINS.restore(kind, key, span, before)
        raise
    finally:
        span.end()


@contextmanager
def cache_apply(kind: str, key: str, event: str, revision: int) -> Iterator[Span | None]:
    """A watch event applied to the cache, traced where this process caused it (the
    leader's own writes): a child of that write, then the origin of ``kind/key``. Other
    events (on a standby, or of writes from elsewhere) get no span: a trace of one span
    per event on every replica would bury the ones that tell a story."""
    cause = ORIGINS.last(kind, key)
    if cause is None:
        yield None
        return
    span = _TRACER.start_span(
        f"cache {event} {kind}/{key}",
        context=as_parent(cause),
        attributes={"kind": kind, "key": key, "revision": revision, "action": event},
    )
    try:
        yield span
    finally:
        span.end()
    ORIGINS.remember(kind, key, span)


ACTIONS_SHOWN = 10
"""A reconcile span names this many of its actions (a topic's can be 100k creates)."""


class PassSpans:
    """The spans of one controller pass that decided something: the pass, and under it
    (or under the change that caused it: the origin of the key) one reconcile span per
    object with the actions decided for it. Writes are children of their reconcile."""

    def __init__(self, epoch: int, number: int, start_ns: int, plan_seconds: float) -> None:
        """Pass 1 of a term is a child of the leadership won."""
        won = ORIGINS.last(*LEADERSHIP) if number == 1 else None
        self.span = _TRACER.start_span(
            "controller pass",
            context=as_parent(won) if won is not None else None,
            start_time=start_ns,
            attributes={"epoch": epoch, "pass": number, "plan_seconds": plan_seconds},
        )
        if self.span.is_recording():  # the plan ran on a worker thread: timed from here
            _TRACER.start_span(
                "controller plan",
                context=trace.set_span_in_context(self.span),
                start_time=start_ns,
                attributes={"epoch": epoch},
            ).end(end_time=start_ns + int(plan_seconds * 1e9))
        self._epoch = epoch
        self._reconciles: dict[tuple[str, str], Span] = {}
        self._decided: dict[tuple[str, str], list[str]] = {}

    def reconcile(self, controller: str, key: str, action: str) -> Context | None:
        """The context a write of ``action`` on behalf of ``controller``'s ``key`` runs in
        (None while tracing is off: nothing is kept)."""
        if not self.span.is_recording():
            return None
        span = self._reconciles.get((controller, key))
        if span is None:
            origin = ORIGINS.last(controller, key)
            links = [Link(self.span.get_span_context())] if origin is not None else []
            span = _TRACER.start_span(
                f"reconcile {controller}/{key}",
                context=as_parent(origin) or trace.set_span_in_context(self.span),
                links=links,
                attributes={"controller": controller, "key": key, "epoch": self._epoch},
            )
            self._reconciles[(controller, key)] = span
        self._decided.setdefault((controller, key), []).append(action)
        context: Context = trace.set_span_in_context(span)
        return context

    def end(self, error: BaseException | None = None) -> None:
        for subject, span in self._reconciles.items():
            decided = self._decided[subject]
            shown = decided[:ACTIONS_SHOWN]
            if len(decided) > ACTIONS_SHOWN:
                shown.append(f"... {len(decided) - ACTIONS_SHOWN} more")
            span.set_attributes({"action": shown, "actions": len(decided)})
            span.end()
        self.span.set_attribute("reconciles", len(self._reconciles))
        if error is not None:
            self.span.set_status(Status(StatusCode.ERROR, f"{type(error).__name__}: {error}"))
        self.span.end()


LINKS_KEPT = 32
"""The most other causes a push or report links to (a delta may serve many traces)."""


@contextmanager
def spu_push(spu_id: int, epoch: int, message: str, partitions: list[str]) -> Iterator[Span]:
    """A control message pushed to an SPU: a child of the change to the first of
    ``partitions`` this process traced, linked to the changes of the others. The caller
    puts ``carrier(span)`` into the message, so the SPU's apply is its child."""
    causes = [c for c in (ORIGINS.last("partitions", key) for key in partitions) if c is not None]
    if message in ("full_sync", "resync"):  # a session's first message: of the leadership
        causes = [c for c in [ORIGINS.last(*LEADERSHIP)] if c is not None]
    with _TRACER.start_as_current_span(
        f"push {message} to spu {spu_id}",
        context=as_parent(causes[0]) if causes else None,
        links=[Link(cause) for cause in causes[1:LINKS_KEPT]],
        attributes={"spu_id": spu_id, "epoch": epoch, "replicas": len(partitions)},
        record_exception=False,
        set_status_on_exception=False,
    ) as span:
        yield span


def ended_with(span: Span, failure: str | None) -> None:
    """Mark ``span`` failed with ``failure``, if any (a message that could not be sent)."""
    if failure:
        span.set_status(Status(StatusCode.ERROR, failure))


@contextmanager
def spu_apply(spu_id: int, message: str, epoch: int, headers: dict[str, str]) -> Iterator[Span]:
    """The SPU applying a control message: a child of the SC's push (its ``trace``)."""
    with _TRACER.start_as_current_span(
        f"spu {spu_id} apply {message}",
        context=from_carrier(headers),
        attributes={"spu_id": spu_id, "epoch": epoch, "action": message},
    ) as span:
        yield span


def refused(span: Span, reason: str) -> None:
    span.set_status(Status(StatusCode.ERROR, reason))


@contextmanager
def spu_status_report(spu_id: int, after: SpanContext) -> Iterator[Span]:
    """The SPU's first status report after applying a traced message: a child of it."""
    with _TRACER.start_as_current_span(
        f"spu {spu_id} status report", context=as_parent(after), attributes={"spu_id": spu_id}
    ) as span:
        yield span


def status_received(spu_id: int, headers: dict[str, str], partitions: list[str]) -> None:
    """The SC took a traced status report: the partitions it names have it as origin, so
    the status writes that follow (a partition Online) join the SPU's trace."""
    parent = from_carrier(headers)
    if parent is None:
        return
    with _TRACER.start_as_current_span(
        f"status from spu {spu_id}",
        context=parent,
        attributes={"spu_id": spu_id, "replicas": len(partitions)},
    ) as span:
        for partition in partitions:
            ORIGINS.remember("partitions", partition, span)


LEADERSHIP = ("leadership", "sc")
"""The origin of what a new leader does first: its first pass, its full syncs."""


class LeadershipWon:
    """A span from the win to acting: the current span meanwhile, so the catch-up's
    progress marks are its children. End it with ``acting`` or ``ended_early``."""

    def __init__(self, epoch: int, replica: str) -> None:
        self.epoch, self.replica = epoch, replica
        self.span = _TRACER.start_span(
            f"leadership won epoch {epoch}",
            context=Context(),  # a trace of its own, whatever runs around it
            attributes={"epoch": epoch, "replica": replica},
        )
        ORIGINS.remember(*LEADERSHIP, self.span)
        self._token: Token[Context] | None = attach(trace.set_span_in_context(self.span))

    def acting(self, revision: int) -> None:
        """Caught up at ``revision``: the leader acts."""
        self.span.set_attribute("revision", revision)
        self._end()

    def ended_early(self, reason: str) -> None:
        """The term ended before the cache caught up."""
        self.span.set_status(Status(StatusCode.ERROR, reason))
        self._end()
        leadership_lost(self.epoch, self.replica, reason)

    def _end(self) -> None:
        if self._token is not None:
            detach(self._token)
            self._token = None
        self.span.end()


def leadership_lost(epoch: int, replica: str, reason: str) -> None:
    """The term ended: a span of no length with the reason."""
    won = ORIGINS.last(*LEADERSHIP)
    with _TRACER.start_as_current_span(
        f"leadership lost epoch {epoch}",
        context=Context(),
        links=[Link(won)] if won is not None else [],
        attributes={"epoch": epoch, "replica": replica, "reason": reason},
    ):
        pass
