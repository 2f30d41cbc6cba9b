"""A dead letter's headers: a re-driven record's letter names the letter it was re-driven from."""

from portflow.adapters import dead_letter_headers as header
from portflow.domain.events import Rejection
from streams.processor import DeadLetter, SourceRecord


def test_the_letter_of_a_redriven_record_carries_its_provenance():
    record = SourceRecord(
        "p.trains", 3, 40, None, b"{}", ((header.REDRIVEN_FROM, b"p.dlq:0:12"), ("other", b"x"))
    )
    headers = DeadLetter(record, Rejection("bad", "invalid_field", b"{}")).headers()
    assert (header.REDRIVEN_FROM, b"p.dlq:0:12") in headers
    assert "other" not in dict(headers)


def test_the_letter_of_a_first_rejection_has_no_provenance():
    record = SourceRecord("p.trains", 3, 40, None, b"{}")
    headers = DeadLetter(record, Rejection("bad", "invalid_field", b"{}")).headers()
    assert header.REDRIVEN_FROM not in dict(headers)
