"""Where a partition is read from, given its mark in Redis and the earliest offset Kafka holds."""

from streams.positioning import StartPoint, start_point


def test_reads_on_after_the_mark():
    assert start_point(mark=41, earliest=0) == StartPoint(42)
    assert start_point(mark=41, earliest=42) == StartPoint(42)


def test_reads_from_the_start_when_nothing_was_applied():
    assert start_point(mark=-1, earliest=0) == StartPoint(0)


def test_offsets_deleted_before_being_applied_are_reported_lost():
    assert start_point(mark=41, earliest=50) == StartPoint(50, (42, 49))
    assert start_point(mark=-1, earliest=7) == StartPoint(7, (0, 6))
