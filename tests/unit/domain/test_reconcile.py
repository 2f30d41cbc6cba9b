"""Published figures against computed ones, at the published precision; inconsistent shares."""

from decimal import Decimal

from portflow.domain.reconcile import check_figure, check_share


def test_figure_matches_at_published_precision():
    assert check_figure("total", "200.00", Decimal("200.004")).matches
    assert not check_figure("total", "200.00", Decimal("200.005")).matches
    assert check_figure("yoy", "48.4", Decimal("48.449")).matches
    assert check_figure("yoy", "18", Decimal("18.00")).matches
    assert check_figure("partners", 205, 205).matches
    assert not check_figure("partners", 205, 204).matches


def test_missing_computed_figure_does_not_match():
    check = check_figure("yoy", "5.3", None)
    assert not check.matches
    assert check.note


def test_inconsistent_published_share_is_flagged_with_the_implied_total():
    check = check_share("ftz share", "33", Decimal("72.82"), Decimal("200.00"))
    assert not check.matches
    assert check.computed == Decimal("36")
    assert "220.67" in check.note
    assert check.note.startswith("published share")
    assert check_share("ok share", "36.4", Decimal("72.82"), Decimal("200")).matches
