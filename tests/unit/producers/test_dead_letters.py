"""Dead letters grouped by the event they are about, and which groups a replay re-drives."""

from producers.dead_letters import (
    ACCEPTED,
    REDRIVEN,
    REJECTED,
    REJECTED_AGAIN,
    DeadLetterRecord,
    group_letters,
    plan_redrive,
    select_groups,
)

DLQ = "p.dlq"
TRAINS = "p.trains"
EVENT_TOPICS = {TRAINS: "train"}


def letter(
    offset,
    source_partition=0,
    source_offset=7,
    batch_index=None,
    redriven_from=None,
    code="invalid_field",
    truncated_from=None,
    partition=0,
    topic=TRAINS,
):
    return DeadLetterRecord(
        partition,
        offset,
        b"k",
        b'{"teu": -3}',
        "teu: must be >= 0",
        code,
        topic,
        source_partition,
        source_offset,
        batch_index,
        truncated_from,
        redriven_from,
        timestamp_ms=1_000 * (offset + 1),
    )


def redrive(letter_position, to, at=0.0):
    return {"letter": letter_position, "at": at, "to": to}


def test_letters_of_one_source_rejected_twice_are_one_event_with_one_attempt():
    """A rebuild (or a crash) re-reads the source: the same record is rejected again."""
    groups = group_letters([letter(0, batch_index=2), letter(5, batch_index=2)], {}, {}, DLQ)
    assert [(g.source, len(g.letters), g.attempts, g.status) for g in groups] == [
        (f"{TRAINS}:0@7[2]", 2, 1, REJECTED)
    ]


def test_elements_of_one_batch_are_separate_events():
    groups = group_letters([letter(0, batch_index=1), letter(1, batch_index=2)], {}, {}, DLQ)
    assert [g.source for g in groups] == [f"{TRAINS}:0@7[1]", f"{TRAINS}:0@7[2]"]


def test_a_redrive_rejected_again_joins_its_letters_group_by_the_header():
    original = letter(0, batch_index=2)
    again = letter(1, source_partition=3, source_offset=40, redriven_from=f"{DLQ}:0:0")
    [group] = group_letters([again, original], {}, {}, DLQ)
    assert group.source == original.source
    assert group.latest == again
    assert group.attempts == 2
    assert group.status == REJECTED_AGAIN


def test_a_chain_of_redrives_stays_one_event():
    letters = [
        letter(0),
        letter(1, 1, 50, redriven_from=f"{DLQ}:0:0"),
        letter(2, 2, 60, redriven_from=f"{DLQ}:0:1"),
    ]
    [group] = group_letters(letters, {}, {}, DLQ)
    assert group.attempts == 3
    assert group.source == f"{TRAINS}:0@7"


def test_the_ledger_groups_a_rejected_redrive_whose_letter_lacks_the_header():
    ledger = {f"{TRAINS}:0@7": [redrive("0@0", f"{TRAINS}:3@40")]}
    letters = [letter(0), letter(1, source_partition=3, source_offset=40)]
    [group] = group_letters(letters, ledger, {f"{TRAINS}:3": 40}, DLQ)
    assert group.attempts == 2
    assert group.status == REJECTED_AGAIN


def test_a_redrive_whose_original_letter_is_gone_is_grouped_under_that_letter():
    letters = [
        letter(8, 3, 40, redriven_from=f"{DLQ}:0:0"),
        letter(9, 3, 40, redriven_from=f"{DLQ}:0:0"),
    ]
    [group] = group_letters(letters, {}, {}, DLQ)
    assert group.source == f"{DLQ}:0:0"
    assert group.attempts == 1


def test_forged_headers_that_loop_do_not_hang():
    letters = [
        letter(0, 1, 1, redriven_from=f"{DLQ}:0:1"),
        letter(1, 2, 2, redriven_from=f"{DLQ}:0:0"),
    ]
    assert sum(len(g.letters) for g in group_letters(letters, {}, {}, DLQ)) == 2


def test_a_redrive_the_workers_handled_without_a_letter_was_accepted():
    ledger = {f"{TRAINS}:0@7": [redrive("0@0", f"{TRAINS}:3@40")]}
    handled = group_letters([letter(0)], ledger, {f"{TRAINS}:3": 40}, DLQ)
    pending = group_letters([letter(0)], ledger, {f"{TRAINS}:3": 39}, DLQ)
    assert handled[0].status == ACCEPTED
    assert pending[0].status == REDRIVEN


def test_history_lists_rejections_and_redrives_in_time_order():
    ledger = {f"{TRAINS}:0@7": [redrive("0@0", f"{TRAINS}:3@40", at=1.5)]}
    letters = [letter(0), letter(1, 3, 40, redriven_from=f"{DLQ}:0:0")]
    [group] = group_letters(letters, ledger, {}, DLQ)
    assert [e["event"] for e in group.history()] == ["rejected", "redriven", "rejected"]
    assert group.as_json()["attempts"] == 2
    assert group.as_json()["offset"] == 1
    assert f"re-driven to {TRAINS}:3@40" in group.summary()


def test_replay_skips_events_already_redriven_unless_asked_again():
    ledger = {f"{TRAINS}:0@7": [redrive("0@0", f"{TRAINS}:3@40")]}
    letters = [letter(0), letter(1, 3, 40, redriven_from=f"{DLQ}:0:0"), letter(2, 0, 8)]
    groups = group_letters(letters, ledger, {f"{TRAINS}:3": 40}, DLQ)
    plan = plan_redrive(groups, EVENT_TOPICS)
    assert [g.source for g in plan.chosen] == [f"{TRAINS}:0@8"]
    assert plan.skipped == {"already re-driven (use --again)": 1}
    again = plan_redrive(groups, EVENT_TOPICS, again=True)
    assert len(again.chosen) == 2
    assert again.chosen[0].latest.offset == 1


def test_replay_never_redrives_an_accepted_or_pending_redrive_even_again():
    ledger = {
        f"{TRAINS}:0@7": [redrive("0@0", f"{TRAINS}:3@40")],
        f"{TRAINS}:0@8": [redrive("0@1", f"{TRAINS}:3@41")],
    }
    groups = group_letters([letter(0), letter(1, 0, 8)], ledger, {f"{TRAINS}:3": 40}, DLQ)
    plan = plan_redrive(groups, EVENT_TOPICS, again=True)
    assert plan.chosen == []
    assert plan.skipped == {
        "accepted after a re-drive": 1,
        "re-driven and not yet handled by the workers": 1,
    }


def test_replay_skips_cut_letters_foreign_topics_and_those_beyond_the_limit():
    letters = [
        letter(0, truncated_from=2_000_000),
        letter(1, 0, 8, topic="elsewhere"),
        letter(2, 0, 9),
        letter(3, 0, 10),
    ]
    plan = plan_redrive(group_letters(letters, {}, {}, DLQ), EVENT_TOPICS, limit=1)
    assert [g.latest.offset for g in plan.chosen] == [2]
    assert set(plan.skipped.values()) == {1}
    assert len(plan.skipped) == 3
    assert "1 beyond --limit 1" in plan.skipped_text()


def test_select_filters_by_the_latest_code_and_limits():
    letters = [letter(0, 0, 1, code="not_json"), letter(1, 0, 2), letter(2, 0, 3)]
    groups = group_letters(letters, {}, {}, DLQ)
    assert [g.latest.offset for g in select_groups(groups, "invalid_field", 1)] == [1]
    assert len(select_groups(groups)) == 3
