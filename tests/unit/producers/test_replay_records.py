"""What a replay sent, mapped back to files and lines, and what the worker did, told by line."""

from portflow.adapters.redis import Outcomes
from producers.replay_records import SentRecords, describe_outcomes, outcomes_missing


def rejection(partition, offset, batch_index, code="invalid_field", reason="bad partner"):
    return {
        "partition": partition,
        "offset": offset,
        "batch_index": batch_index,
        "code": code,
        "reason": reason,
    }


def sent_two_files() -> SentRecords:
    """a.jsonl: a batch of lines 1, 3, 4 (trains:0@7) and line 2 alone (shipments:1@0);
    b.jsonl: a batch of lines 5, 6 (trains:0@8)."""
    sent = SentRecords()
    batch, alone, second = (
        sent.add("a.jsonl", [1, 3, 4]),
        sent.add("a.jsonl", [2]),
        sent.add("b.jsonl", [5, 6]),
    )
    sent.delivered(alone, "p.shipments", 1, 0)
    sent.delivered(batch, "p.trains", 0, 7)
    sent.delivered(second, "p.trains", 0, 8)
    return sent


def test_a_batch_element_maps_to_the_line_packed_at_its_index():
    sent = sent_two_files()
    assert sent.rejection_at(rejection("p.trains:0", 7, 2))[1] == "a.jsonl:4"
    assert sent.rejection_at(rejection("p.trains:0", 8, 0))[1] == "b.jsonl:5"
    assert sent.rejection_at(rejection("p.shipments:1", 0, None))[1] == "a.jsonl:2"
    assert sent.rejection_at(rejection("p.trains:0", 7, None))[1] == "a.jsonl:1-4"


def test_a_single_line_read_as_an_array_names_the_element():
    sent = SentRecords()
    sent.delivered(sent.add("a.jsonl", [9]), "p.shipments", 0, 3)
    assert sent.rejection_at(rejection("p.shipments:0", 3, 2))[1] == "a.jsonl:9[2]"


def test_a_record_this_run_did_not_send_is_named_by_its_offset():
    assert sent_two_files().rejection_at(rejection("p.trains:1", 5, 0))[1] == "p.trains:1@5"


def test_offsets_per_partition_are_collected():
    assert sent_two_files().offsets == {("p.shipments", 1): (0, 0), ("p.trains", 0): (7, 8)}


def test_the_first_unpublished_line_is_the_earliest_of_any_record_not_acknowledged():
    sent = SentRecords()
    first, second, third = (sent.add("a.jsonl", lines) for lines in ([2, 5], [1, 3], [4]))
    sent.delivered(second, "t", 0, 0)
    sent.failed(first, RuntimeError("broker said no"))
    assert sent.first_unpublished() == ("a.jsonl", 2)
    assert sent.failures == ["a.jsonl:2-5: broker said no"]
    assert sent.in_flight == 1  # the third: neither acknowledged nor failed
    sent.delivered(first, "t", 0, 1)
    sent.delivered(third, "t", 0, 2)
    assert SentRecords().first_unpublished() is None


def test_outcomes_say_counts_by_code_and_the_first_rejections_in_file_order():
    sent = sent_two_files()
    outcomes = Outcomes(
        applied=478,
        duplicates=3,
        rejected={"not_json": 5, "invalid_field": 40},
        rejections=[
            rejection("p.trains:0", 8, 1, reason="partner 'XX'"),
            rejection("p.shipments:1", 0, None, "not_json", "not JSON"),
            rejection("p.trains:0", 7, 0),
        ],
    )
    assert describe_outcomes(outcomes, sent) == [
        "the worker applied 478 event(s), skipped 3 duplicate(s) and rejected 45 "
        "(40 invalid_field, 5 not_json)",
        "  a.jsonl:1: invalid_field: bad partner",
        "  a.jsonl:2: not_json: not JSON",
        "  b.jsonl:6: invalid_field: partner 'XX'",
        "  and 42 more: `portflow dlq list` shows every rejection (--code C for one kind)",
    ]


def test_at_most_five_rejections_are_shown_and_long_reasons_are_cut():
    sent = SentRecords()
    for offset in range(8):
        sent.delivered(sent.add("a.jsonl", [offset + 1]), "t", 0, offset)
    outcomes = Outcomes(
        rejected={"invalid_field": 8},
        rejections=[rejection("t:0", n, None, reason="x" * 300) for n in range(8)],
    )
    said = describe_outcomes(outcomes, sent)
    assert [line.split(":")[1] for line in said[1:6]] == ["1", "2", "3", "4", "5"]
    assert said[1].endswith("x" * 200 + "…")
    assert said[6].startswith("  and 3 more")


def test_a_line_published_cut_says_its_size():
    sent = SentRecords()
    sent.delivered(sent.add("a.jsonl", [3], cut_from=2_000_000), "t", 0, 0)
    where = sent.rejection_at(rejection("t:0", 0, None, "too_large"))[1]
    assert where == "a.jsonl:3 (a line of 2,000,000 bytes, published cut)"


def test_a_worker_that_counted_nothing_is_said_not_taken_for_zero_rejections():
    sent = sent_two_files()
    assert outcomes_missing(Outcomes(), sent)
    assert "counted nothing" in describe_outcomes(Outcomes(), sent)[0]
    assert not outcomes_missing(Outcomes(duplicates=1), sent)
    assert describe_outcomes(Outcomes(), sent, "so far ")[0].startswith("so far the worker")
