"""The quote counts behind the repeated-key shortcut are taken from the wire models' fields and
are exact for an event with just its contract's fields (``keys_may_repeat``, ``plain_batch``).
That the shortcuts agree with the strict way on every input: ``test_fast_paths.py``."""

import json
from datetime import datetime
from typing import Annotated, Literal

import msgspec
import pytest

from portflow.domain import event_decoding
from portflow.domain.event_decoding import LooseCustoms, LooseShipment, LooseTrain
from tests.support import events as valid

REQUIRED = {
    LooseShipment: valid.shipment(
        ts="2024-03-14T08:15:00+08:00",
        value_cny=1234.56,
        weight_tonnes="12.345",
        zones=["ftz-urumqi", "cbz-urumqi"],
    ),
    LooseTrain: valid.train(port="alashankou"),
    LooseCustoms: valid.customs(port="kashgar", declaration_id="D-9", status="released"),
}
# A value for every optional field of the wire models: a field added without one fails below.
OPTIONAL = {"train_id": "X8012", "trade_mode": "processing", "value_cny": "99.5"}


def optional_fields(model: type[msgspec.Struct]) -> list[str]:
    return [field.name for field in msgspec.structs.fields(model) if not field.required]


def assert_exact(model: type[msgspec.Struct], event: dict[str, object]) -> None:
    raw = json.dumps(event).encode()
    wire = msgspec.json.decode(raw, type=model)
    pairs = raw.count(b'"') // 2
    assert wire.quote_pairs() + wire.quoted_amounts() == pairs, (
        f"{model.__name__}.quote_pairs (its constants: event_decoding._*_PAIRS) counts"
        f" {wire.quote_pairs()} + {wire.quoted_amounts()} quoted amounts; {raw!r} has {pairs}"
    )


@pytest.mark.parametrize("model", list(REQUIRED), ids=lambda model: model.__name__)
def test_the_quote_count_of_an_event_with_its_required_fields_only_is_exact(model):
    assert_exact(model, REQUIRED[model])


@pytest.mark.parametrize("model", list(REQUIRED), ids=lambda model: model.__name__)
def test_the_quote_count_of_an_event_with_every_field_given_is_exact(model):
    unknown = set(optional_fields(model)) - set(OPTIONAL)
    assert not unknown, f"give {unknown} a value in OPTIONAL and count it in quote_pairs"
    assert_exact(
        model, {**REQUIRED[model], **{name: OPTIONAL[name] for name in optional_fields(model)}}
    )


def test_amounts_written_either_way_are_counted_apart():
    for value, weight in [(1, 2), ("1", 2), (1, "2"), ("1", "2")]:
        assert_exact(
            LooseShipment, {**REQUIRED[LooseShipment], "value_cny": value, "weight_tonnes": weight}
        )
    for zones in [[], ["a"], ["a", "b", "c"]]:
        assert_exact(LooseShipment, {**REQUIRED[LooseShipment], "zones": zones})


class EveryKind(msgspec.Struct, tag_field="type", tag="kinds"):
    text: str
    code: Annotated[str, msgspec.Meta(pattern="^[a-z]+$")]
    choice: Literal["a", "b"]
    when: datetime
    number: int
    numbered_choice: Literal[1, 2]
    raw: msgspec.Raw
    texts: tuple[str, ...]
    maybe_text: str | None = None
    maybe_choice: Literal["a", "b"] | None = None
    maybe_number: int | None = None
    maybe_raw: msgspec.Raw = msgspec.field(default_factory=lambda: event_decoding.JSON_NULL)


def test_only_fields_that_are_always_strings_count_their_values():
    # the tag's key and value; four fields' keys and strings; four keys alone
    assert event_decoding._sure_pairs(EveryKind) == 2 + 4 * 2 + 4
    given = {
        name: event_decoding._pairs_when_given(EveryKind, name)
        for name in optional_fields(EveryKind)
    }
    assert given == {"maybe_text": 2, "maybe_choice": 2, "maybe_number": 1, "maybe_raw": 1}


def test_a_model_without_a_tag_counts_no_tag():
    class Untagged(msgspec.Struct):
        text: str

    assert event_decoding._sure_pairs(Untagged) == 2
