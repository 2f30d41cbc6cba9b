"""Coverage-guided fuzzing of ``parse_record`` with atheris (libFuzzer for Python).

    .venv/bin/python fuzz/fuzz_parse_record.py [libFuzzer options] [CORPUS_DIR ...]

The first byte of an input chooses the topic's event type, the rest is the Kafka record. An
input fails when ``parse_record`` raises, returns neither events nor rejections, returns a
rejection without a known code and a reason, or rejects it as ``internal_error``: that code
is the catch-all for exceptions nobody foresaw, so reaching it is a bug to mend. See
fuzz/README.md for how it is run and what a long run found.
"""

from __future__ import annotations

import sys

import atheris

with atheris.instrument_imports(include=["portflow"]):
    from portflow.domain.events import REJECTION_CODES, parse_record

EVENT_TYPES = ("shipment", "train", "customs")


def test_one_input(data: bytes) -> None:
    expected_type = EVENT_TYPES[data[0] % len(EVENT_TYPES)] if data else "shipment"
    events, rejections = parse_record(data[1:], expected_type)
    if not events and not rejections:
        raise AssertionError("neither events nor rejections")
    for rejection in rejections:
        if rejection.code not in REJECTION_CODES or not rejection.reason:
            raise AssertionError(f"rejection without a code or reason: {rejection!r}")
        if rejection.code == "internal_error":
            raise AssertionError(f"parse_record's catch-all reached: {rejection.reason}")


def main() -> None:
    atheris.Setup(sys.argv, test_one_input)
    atheris.Fuzz()


if __name__ == "__main__":
    main()
