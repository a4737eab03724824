"""An SPU's picture at the leader: full reports replace it, partial ones amend it."""

from __future__ import annotations

from ha_sc.protocol import ReplicaReport, StatusReport
from ha_sc.sc.spu_connection import ReceivedStatus
from ha_sc.sc.spu_picture import SpuPicture

ME = 5001


def replica(partition: str, leo: int) -> ReplicaReport:
    return ReplicaReport(partition=partition, leo=leo, hw=leo)


def received(
    at: float, *replicas: ReplicaReport, full: bool = False, removed: tuple[str, ...] = ()
) -> ReceivedStatus:
    return ReceivedStatus(
        StatusReport(spu_id=ME, replicas=list(replicas), full=full, removed=list(removed)), at
    )


def offsets(picture: SpuPicture) -> dict[str, int]:
    report = picture.received().report
    assert report.full and report.spu_id == ME and not report.removed
    return {r.partition: r.leo for r in report.replicas}


def test_partial_reports_amend_the_picture_and_a_full_one_replaces_it() -> None:
    picture = SpuPicture(received(1.0, replica("a-0", 1), replica("b-0", 2), full=True))
    assert offsets(picture) == {"a-0": 1, "b-0": 2}

    picture.amend(received(2.0, replica("a-0", 5), replica("c-0", 1), removed=("b-0",)))
    assert offsets(picture) == {"a-0": 5, "c-0": 1}
    assert picture.received().at == 2.0

    picture.amend(received(3.0, replica("d-0", 7), full=True))
    assert offsets(picture) == {"d-0": 7}


def test_a_quiet_heartbeat_moves_only_the_time_heard() -> None:
    picture = SpuPicture(received(1.0, replica("a-0", 1), full=True))
    before = picture.received().report
    picture.amend(received(2.0))
    now = picture.received()
    assert now.at == 2.0
    assert now.report == before
    assert offsets(picture) == {"a-0": 1}


def test_a_first_partial_report_reads_as_the_whole_picture() -> None:
    picture = SpuPicture(received(1.0, replica("a-0", 3)))
    assert offsets(picture) == {"a-0": 3}
