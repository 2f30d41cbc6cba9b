"""Records and their dead letters: a re-driven record's letter names the letter it was re-driven
from."""

import pytest

from portflow.adapters import dead_letter_headers as header
from portflow.domain.events import Rejection
from portflow.services.processing.records import DeadLetter, SourceRecord


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


@pytest.mark.parametrize("run", ["a" * 65, "has space", "naïve", ""])
def test_an_implausible_replay_run_header_names_no_run(run):
    record = SourceRecord("p.trains", 0, 0, None, b"{}", ((header.REPLAY_RUN, run.encode()),))
    assert record.run is None


def test_a_plausible_replay_run_header_names_its_run():
    record = SourceRecord("p.trains", 0, 0, None, b"{}", ((header.REPLAY_RUN, b"run-1_b"),))
    assert record.run == "run-1_b"
