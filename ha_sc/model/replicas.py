"""How a topic's partitions get their replicas: computed by the SC or assigned by hand."""

from collections.abc import Mapping, Sequence
from typing import Self

from pydantic import Field, field_validator, model_validator
from pydantic_core import PydanticCustomError

from ha_sc.model.base import SpecModel
from ha_sc.model.ints import I32_MAX, PartitionId, SpuId

# The assigned-map rules below follow Fluvio's validation of an assigned partition map
# (the partition-map check in its control-plane topic spec): at least one partition; ids
# start at 0 and run in sequence without gaps; each partition lists at least one SPU,
# with no SPU twice; every partition lists the same number of SPUs; SPU ids are not
# negative (enforced here by the SpuId type). Fluvio reports a duplicated id as a
# sequence error; here it gets its own message.


class ComputedReplicas(SpecModel):
    """Let the SC place replicas across the SPUs."""

    partitions: int = Field(ge=1, le=I32_MAX)
    replication_factor: int = Field(ge=1, le=I32_MAX)
    ignore_rack_assignment: bool = False


class PartitionMap(SpecModel):
    """The SPUs of one partition, leader first."""

    id: PartitionId
    replicas: list[SpuId]

    @field_validator("replicas")
    @classmethod
    def _replicas_valid(cls, replicas: list[int]) -> list[int]:
        if not replicas:
            raise PydanticCustomError(
                "no_replicas", "a partition needs at least one replica spu id"
            )
        seen: set[int] = set()
        for spu in replicas:
            if spu in seen:
                raise PydanticCustomError(
                    "duplicate_replica", "spu id {spu} appears more than once", {"spu": spu}
                )
            seen.add(spu)
        return replicas


class AssignedReplicas(SpecModel):
    """Replica placement given explicitly, one map per partition."""

    maps: list[PartitionMap]

    @field_validator("maps")
    @classmethod
    def _maps_valid(cls, maps: list[PartitionMap]) -> list[PartitionMap]:
        if not maps:
            raise PydanticCustomError(
                "no_partitions", "assigned replicas need at least one partition"
            )
        if maps[0].id != 0:
            raise PydanticCustomError(
                "partition_ids", "partition ids must start at 0, found {id}", {"id": maps[0].id}
            )
        factor = len(maps[0].replicas)
        for expected, partition in enumerate(maps):
            if partition.id < expected:
                raise PydanticCustomError(
                    "partition_ids",
                    "partition id {id} appears more than once",
                    {"id": partition.id},
                )
            if partition.id != expected:
                raise PydanticCustomError(
                    "partition_ids",
                    "partition ids must run 0, 1, 2, ... in order without gaps: "
                    "expected {expected}, found {id}",
                    {"expected": expected, "id": partition.id},
                )
            if len(partition.replicas) != factor:
                raise PydanticCustomError(
                    "replication_factor",
                    "every partition needs the same number of replicas: "
                    "partition 0 has {factor}, partition {id} has {count}",
                    {"factor": factor, "id": partition.id, "count": len(partition.replicas)},
                )
        return maps

    def replica_map(self) -> dict[int, list[int]]:
        """Partition id -> replica SPU ids."""
        return {partition.id: list(partition.replicas) for partition in self.maps}


class TopicReplicas(SpecModel):
    """Exactly one of `computed` or `assigned`; JSON is `{"computed": {...}}` or
    `{"assigned": {"maps": [...]}}`."""

    computed: ComputedReplicas | None = None
    assigned: AssignedReplicas | None = None

    @model_validator(mode="after")
    def _exactly_one(self) -> Self:
        if (self.computed is None) == (self.assigned is None):
            raise PydanticCustomError(
                "replica_spec", "exactly one of 'computed' or 'assigned' must be given"
            )
        return self

    @classmethod
    def new_computed(
        cls, partitions: int, replication_factor: int, *, ignore_rack_assignment: bool = False
    ) -> Self:
        """Replicas placed by the SC."""
        return cls(
            computed=ComputedReplicas(
                partitions=partitions,
                replication_factor=replication_factor,
                ignore_rack_assignment=ignore_rack_assignment,
            )
        )

    @classmethod
    def new_assigned(cls, replica_map: Mapping[int, Sequence[int]]) -> Self:
        """Replicas given by hand as partition id -> SPU ids, in partition order."""
        maps = [PartitionMap(id=pid, replicas=list(spus)) for pid, spus in replica_map.items()]
        return cls(assigned=AssignedReplicas(maps=maps))

    def partition_count(self) -> int:
        """Number of partitions the topic has."""
        if self.computed is not None:
            return self.computed.partitions
        assert self.assigned is not None
        return len(self.assigned.maps)

    def replication_factor(self) -> int:
        """Number of replicas of each partition."""
        if self.computed is not None:
            return self.computed.replication_factor
        assert self.assigned is not None
        return len(self.assigned.maps[0].replicas)
