"""The demo's view renders reports, shares, YoY and the reconciliation flags."""

from decimal import Decimal

from rich.console import Console

from entrypoints.dashboard import VIEWS, PipelineStatus, Snapshot, render
from portflow.domain.reconcile import check_figure, check_share


def report(measure, dim):
    rows = [
        {
            "key": {dim: "khorgos"},
            "current": Decimal("62730000000.00"),
            "previous": Decimal("44960000000.00"),
            "yoy_pct": Decimal("39.52"),
        },
        {
            "key": {dim: "newport"},
            "current": Decimal("1.00"),
            "previous": Decimal("0.00"),
            "yoy_pct": None,
        },
    ]
    return {"period": "2024-H1", "previous_period": "2023-H1", "rows": rows}


def test_render_shows_yoy_shares_flags_and_pipeline():
    snapshot = Snapshot(
        "2024-H1",
        {title: report(m, d) for title, m, d, _ in VIEWS},
        {
            "current": Decimal("200000000000.00"),
            "previous": Decimal("134770889487.87"),
            "yoy_pct": Decimal("48.40"),
        },
        [
            check_figure("total", "200.00", Decimal("200.00")),
            check_share("ftz share", "33", Decimal("72.82"), Decimal("200")),
        ],
        PipelineStatus(applied_events=1234, events_per_s=56.0, lag_records=7),
    )
    console = Console(width=200, record=True)
    console.print(render(snapshot))
    text = console.export_text()
    assert "200.00 bn yuan" in text
    assert "+48.4" in text
    assert "62.73" in text
    assert "31.4" in text
    assert "new" in text  # no previous-year value
    assert "✓ matches" in text
    assert "220.67" in text
    assert "1,234 events applied" in text
    assert "lag 7 records" in text
