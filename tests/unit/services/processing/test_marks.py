"""Which records continue their partition's mark: in order, no hole, except at a move."""

from portflow.services.processing.marks import PartitionMarks
from portflow.services.processing.records import SourceRecord


def records(*offsets: int, partition: int = 0) -> list[SourceRecord]:
    return [SourceRecord("t", partition, offset, None, b"{}") for offset in offsets]


def test_records_at_or_below_the_mark_are_skipped_and_the_next_ones_taken():
    marks, gaps = PartitionMarks(), set()
    chosen = marks.in_order(records(3, 4, 5, 6), gaps, {"t:0": 4})
    assert [r.offset for r in chosen] == [5, 6]
    assert gaps == set()


def test_a_hole_holds_back_the_rest_of_its_partition_only():
    marks, gaps = PartitionMarks(), set()
    batch = records(0, 2, 3) + records(0, 1, partition=1)
    chosen = marks.in_order(batch, gaps, {"t:0": -1, "t:1": -1})
    assert [(r.partition, r.offset) for r in chosen] == [(0, 0), (1, 0), (1, 1)]
    assert gaps == {"t:0"}


def test_after_a_move_the_record_at_resume_at_continues_and_older_ones_in_flight_drop():
    marks, gaps = PartitionMarks(), set()
    marks.move("t:0", mark=-1, resume_at=100)
    assert marks.moves == 1
    assert marks.in_order(records(7, 8), gaps, marks.copy()) == []  # in flight from before
    assert gaps == set()  # (not a gap while the move is pending)
    chosen = marks.in_order(records(100, 101), gaps, marks.copy())
    assert [r.offset for r in chosen] == [100, 101]


def test_a_move_is_forgotten_once_a_step_applied_past_it():
    marks = PartitionMarks()
    marks.move("t:0", mark=-1, resume_at=100)
    marks.advance("t:0", 101)
    gaps: set[str] = set()
    assert marks.in_order(records(103), gaps, marks.copy()) == []
    assert gaps == {"t:0"}  # a hole now, no longer a move's in-flight record
    assert marks.get("t:0") == 101


def test_only_partitions_not_held_are_unknown():
    marks = PartitionMarks()
    marks.read({"t:0": 5})
    assert marks.unknown({"t:0", "t:1"}) == {"t:1"}
