"""A pure model of the KV's write rules, to run reducers against without any I/O.

``simulate_actions`` applies actions the way the controller loops will send them to
the KV: one write per action, each getting the next revision, updates and
deletes conditional on the revision they name, deletes cascading to owned
objects. Tests use it to check that reducers converge and are idempotent; it
also states, in code, what the loops are expected to do with an action.
"""

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any, cast

from ha_sc.controllers.actions import Action, CreateObject, DeleteObject, UpdateSpec, UpdateStatus
from ha_sc.model.kinds import Kind, Partition, Spu, Topic, kind_info
from ha_sc.model.meta import ObjectMeta, StoredObject

AnyObject = StoredObject[Any, Any]


class ActionRefused(Exception):
    """An action the KV would refuse: the key exists, is gone, or is at another revision."""


@dataclass(frozen=True)
class SimulatedCluster:
    """Every object by kind and key, and the revision of the last write."""

    objects: Mapping[Kind, Mapping[str, AnyObject]] = field(default_factory=dict)
    revision: int = 0

    @classmethod
    def of(
        cls, objects: Iterable[tuple[Kind, AnyObject]], *, revision: int = 0
    ) -> "SimulatedCluster":
        """A state holding ``objects`` as given (their revisions are kept)."""
        by_kind: dict[Kind, dict[str, AnyObject]] = {}
        for kind, obj in objects:
            by_kind.setdefault(kind, {})[obj.key] = obj
            revision = max(revision, obj.meta.revision)
        return cls(_freeze(by_kind), revision)

    def of_kind(self, kind: Kind) -> Mapping[str, AnyObject]:
        """The objects of one kind by key."""
        return self.objects.get(kind, MappingProxyType({}))

    @property
    def spus(self) -> Mapping[str, Spu]:
        return cast(Mapping[str, Spu], self.of_kind(Kind.SPU))

    @property
    def topics(self) -> Mapping[str, Topic]:
        return cast(Mapping[str, Topic], self.of_kind(Kind.TOPIC))

    @property
    def partitions(self) -> Mapping[str, Partition]:
        return cast(Mapping[str, Partition], self.of_kind(Kind.PARTITION))


def simulate_actions(state: SimulatedCluster, actions: Iterable[Action]) -> SimulatedCluster:
    """The state after every action, in order; raises ActionRefused like the KV would."""
    objects = {kind: dict(by_key) for kind, by_key in state.objects.items()}
    revision = state.revision
    for action in actions:
        revision += 1
        _apply(objects, action, revision)
    return SimulatedCluster(_freeze(objects), revision)


def _apply(objects: dict[Kind, dict[str, AnyObject]], action: Action, revision: int) -> None:
    by_key = objects.setdefault(action.kind, {})
    current = by_key.get(action.key)
    where = f"{action.kind}/{action.key}"
    if isinstance(action, CreateObject):
        if current is not None:
            raise ActionRefused(f"{where} already exists")
        info = kind_info(action.kind)
        meta = ObjectMeta(
            key=action.key, revision=revision, create_revision=revision, owner=action.owner
        )
        status = action.status if action.status is not None else info.status_type()
        by_key[action.key] = info.object_type(meta=meta, spec=action.spec, status=status)
        return
    if current is None:
        raise ActionRefused(f"{where} not found")
    if action.revision is not None and action.revision != current.meta.revision:
        raise ActionRefused(
            f"{where} is at revision {current.meta.revision}, not {action.revision}"
        )
    if isinstance(action, DeleteObject):
        _delete(objects, action.kind, action.key)
        return
    meta = current.meta.model_copy(update={"revision": revision})
    if isinstance(action, UpdateSpec):
        by_key[action.key] = current.model_copy(update={"meta": meta, "spec": action.spec})
    else:
        assert isinstance(action, UpdateStatus)
        by_key[action.key] = current.model_copy(update={"meta": meta, "status": action.status})


def _delete(objects: dict[Kind, dict[str, AnyObject]], kind: Kind, key: str) -> None:
    objects[kind].pop(key, None)
    for owned_kind, by_key in objects.items():
        for owned_key, obj in list(by_key.items()):
            owner = obj.meta.owner
            if owner is not None and owner.names(kind.value, key) and owned_key in by_key:
                _delete(objects, owned_kind, owned_key)


def _freeze(
    objects: Mapping[Kind, Mapping[str, AnyObject]],
) -> Mapping[Kind, Mapping[str, AnyObject]]:
    return MappingProxyType(
        {kind: MappingProxyType(dict(by_key)) for kind, by_key in objects.items()}
    )
