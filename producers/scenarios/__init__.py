"""The built-in scenarios of ``portflow scenario``: deterministic replay files."""

from __future__ import annotations

from portflow.errors import UsageError

SCENARIOS = ("xinjiang-2024h1", "sample", "disruption-drill")
MAX_SCALE = 10  # xinjiang-2024h1 at --scale 10: about 7 million events, held in memory to sort
MAX_SAMPLE_EVENTS = 10_000_000


class InvalidScenario(UsageError, ValueError):
    """An unknown scenario, or options it cannot be written with."""


def write_scenario(
    name: str, out: str, seed: int = 2024, scale: float = 1.0, events: int = 20000
) -> list[str]:
    """Write scenario ``name`` to ``out``; return what to tell the user (events, files)."""
    if name == "sample":
        from producers.sample import generate_sample

        if not 1 <= events <= MAX_SAMPLE_EVENTS:
            raise InvalidScenario(f"--events must be 1 to {MAX_SAMPLE_EVENTS:,}")
        generate_sample(out, events=events, seed=seed)
        return [f"wrote {out}"]
    if name == "disruption-drill":
        from producers.scenarios.disruption_drill import expected_path, generate_drill

        lines = generate_drill(out, seed=seed)
        return [f"{lines:,} events", f"wrote {expected_path(out)}", f"wrote {out}"]
    if name == "xinjiang-2024h1":
        from producers.scenarios.xinjiang import generate_xinjiang, write_rates

        try:
            lines = generate_xinjiang(out, seed=seed, scale=scale)
        except ValueError as exc:
            raise InvalidScenario(str(exc)) from None
        return [
            f"{lines:,} events",
            f"wrote {write_rates(out)} (its USD rates: portflow rates load it)",
            f"wrote {out}",
        ]
    raise InvalidScenario(f"unknown scenario {name!r}; choose from {', '.join(SCENARIOS)}")
