"""An event's JSON decoded fast: the wire models, and the shortcuts of the worker's hot path.

Why this exists: the batched worker parses tens of thousands of events a second, so the common
case must avoid per-event Python work that decides nothing. ``portflow.domain.events`` states
the contract; it takes each shortcut here only where the shortcut gives the strict way's answer
(``tests/unit/domain/test_fast_paths.py`` compares the two on every kind of input):

- the *loose* wire models leave out the string patterns (msgspec calls Python's ``re`` for each
  patterned value); ports and zones are checked against the distinct codes already seen
  (``KnownCodes``). Anything the loose models reject, or accept but the contract does not, is
  decoded again with the *strict* models, the one source of every field's rule and reason;
- a repeated key (msgspec keeps the last value) is ruled out by counting quotes
  (``keys_may_repeat``): an event with just its contract's fields costs one ``bytes.count``;
- a batch record of such events is decoded in one call (``plain_batch``);
- an amount written plainly is scaled without ``Decimal`` (``plain_scaled``).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from datetime import datetime
from typing import Annotated, Literal, get_args, get_origin

import msgspec

from portflow.domain.countries import ISO_3166_ALPHA2
from portflow.domain.event_fields import (
    MAX_EVENT_BYTES,
    MAX_TEU,
    MAX_ZONE_LENGTH,
    MAX_ZONES,
    PORT_PATTERN,
    ZONE_PATTERN,
    CustomsStatus,
    Identifier,
    Mode,
    PartnerCode,
    PortCode,
    ShipmentDirection,
    TradeMode,
    TrainDirection,
    TrainService,
    ZoneCode,
)

JSON_NULL = msgspec.Raw(b"null")


# The wire models: what the JSON must look like; amounts stay raw JSON text until scaled. The
# strict models (``*Wire``) add the patterns back in the loose models' field positions, so
# msgspec reports the same first fault either way. (``gc=False``: a decoded wire model holds no
# cycle, and a batch record brings hundreds of them to the garbage collector.)
class LooseShipment(msgspec.Struct, tag_field="type", tag="shipment", gc=False):
    event_id: Identifier
    ts: datetime
    port: str
    mode: Mode
    direction: ShipmentDirection
    value_cny: msgspec.Raw
    weight_tonnes: msgspec.Raw
    partner: str
    trade_mode: TradeMode
    zones: Annotated[tuple[str, ...], msgspec.Meta(max_length=MAX_ZONES)]

    def quote_pairs(self) -> int:
        """The pairs of quotes the JSON object surely has: its keys and string values
        (``keys_may_repeat``), amounts written as strings aside (``quoted_amounts``: they
        cost a look, so a batch record looks only if its quotes are more than these)."""
        return _SHIPMENT_PAIRS + len(self.zones)

    def quoted_amounts(self) -> int:
        return _quoted(self.value_cny) + _quoted(self.weight_tonnes)


class LooseTrain(msgspec.Struct, tag_field="type", tag="train", gc=False):
    event_id: Identifier
    ts: datetime
    port: str
    service: TrainService
    direction: TrainDirection
    teu: Annotated[int, msgspec.Meta(ge=0, le=MAX_TEU)]
    train_id: Annotated[str, msgspec.Meta(max_length=128)] | None = None

    def quote_pairs(self) -> int:
        named = self.train_id is not None  # an explicit null is not counted: it costs a check
        return _TRAIN_PAIRS + _TRAIN_ID_PAIRS * named

    def quoted_amounts(self) -> int:
        return 0


class LooseCustoms(msgspec.Struct, tag_field="type", tag="customs", gc=False):
    event_id: Identifier
    ts: datetime
    port: str
    declaration_id: Identifier
    status: CustomsStatus
    trade_mode: TradeMode | None = None
    value_cny: msgspec.Raw = msgspec.field(default_factory=lambda: JSON_NULL)

    def quote_pairs(self) -> int:
        traded = self.trade_mode is not None
        valued = bytes(self.value_cny) != b"null"  # an explicit null is not counted either
        return _CUSTOMS_PAIRS + _TRADE_MODE_PAIRS * traded + _VALUE_PAIRS * valued

    def quoted_amounts(self) -> int:
        return _quoted(self.value_cny)


class ShipmentWire(LooseShipment, tag="shipment"):
    port: PortCode
    partner: PartnerCode
    zones: Annotated[tuple[ZoneCode, ...], msgspec.Meta(max_length=MAX_ZONES)]


class TrainWire(LooseTrain, tag="train"):
    port: PortCode


class CustomsWire(LooseCustoms, tag="customs"):
    port: PortCode


Wire = LooseShipment | LooseTrain | LooseCustoms


def _always_string(annotation: object) -> bool:
    """Whether a field of this type is always a JSON string: a string, one of some strings, or
    a date-time (msgspec decodes one from nothing else)."""
    if get_origin(annotation) is Annotated:
        annotation = get_args(annotation)[0]
    if get_origin(annotation) is Literal:
        return all(isinstance(choice, str) for choice in get_args(annotation))
    return annotation in (str, datetime)


def _sure_pairs(wire: type[msgspec.Struct]) -> int:
    """The pairs of quotes every JSON object of ``wire`` holds: the tag's key and value, and each
    required field's key and, where it is always a string, its value."""
    tag = 2 if wire.__struct_config__.tag_field is not None else 0
    fields = msgspec.structs.fields(wire)
    return tag + sum(1 + _always_string(field.type) for field in fields if field.required)


def _pairs_when_given(wire: type[msgspec.Struct], name: str) -> int:
    """The pairs of quotes an optional field adds when given (not null): its key and, where it
    is always a string, its value."""
    [field] = [field for field in msgspec.structs.fields(wire) if field.name == name]
    given = [choice for choice in get_args(field.type) if choice is not type(None)]
    return 1 + _always_string(given[0] if len(given) == 1 else field.type)


# The counts ``quote_pairs`` adds up, taken from the models' fields: a field added, dropped or
# retyped changes them with it.
_SHIPMENT_PAIRS = _sure_pairs(LooseShipment)
_TRAIN_PAIRS = _sure_pairs(LooseTrain)
_TRAIN_ID_PAIRS = _pairs_when_given(LooseTrain, "train_id")
_CUSTOMS_PAIRS = _sure_pairs(LooseCustoms)
_TRADE_MODE_PAIRS = _pairs_when_given(LooseCustoms, "trade_mode")
_VALUE_PAIRS = _pairs_when_given(LooseCustoms, "value_cny")

_LOOSE_DECODER: msgspec.json.Decoder[Wire] = msgspec.json.Decoder(Wire)
STRICT_DECODER: msgspec.json.Decoder[Wire] = msgspec.json.Decoder(
    ShipmentWire | TrainWire | CustomsWire
)
BATCH_DECODER = msgspec.json.Decoder(list[msgspec.Raw])
# A union, as for single events: outside a union msgspec would not require a struct's tag.
_LOOSE_BATCH_DECODER: msgspec.json.Decoder[list[Wire]] = msgspec.json.Decoder(list[Wire])
_LOOSE_WIRE_OF = {
    wire.__struct_config__.tag: wire for wire in (LooseShipment, LooseTrain, LooseCustoms)
}


class KnownCodes:
    """The distinct codes (ports, zones) already seen to match their pattern, so that each pays
    the regex once. Checked as msgspec checks a pattern (``re.search``). Bounded, so hostile
    input cannot grow it without limit."""

    MAX_KNOWN = 10_000

    def __init__(self, pattern: str, max_length: int | None = None) -> None:
        self._pattern = re.compile(pattern)
        self._max_length = max_length
        self.known: set[str] = set()

    def admit(self, code: str) -> bool:
        """Whether ``code`` matches; remembered if it does."""
        if code in self.known:
            return True
        if self._max_length is not None and len(code) > self._max_length:
            return False
        if not self._pattern.search(code):
            return False
        if len(self.known) >= self.MAX_KNOWN:
            self.known.clear()
        self.known.add(code)
        return True

    def admit_all(self, codes: Sequence[str]) -> bool:
        """Whether every code matches; one look when all are known (the common case)."""
        return self.known.issuperset(codes) or all(map(self.admit, codes))


_PORTS = KnownCodes(PORT_PATTERN)
_ZONES = KnownCodes(ZONE_PATTERN, MAX_ZONE_LENGTH)


def codes_match(wire: Wire) -> bool:
    """Whether the codes the loose models leave unchecked match the strict models' patterns.

    A partner outside ISO 3166 counts as a mismatch: the strict model then tells a malformed
    code (``invalid_field``) from a well-formed unknown one (``unknown_partner``)."""
    if not _PORTS.admit(wire.port):
        return False
    if isinstance(wire, LooseShipment):
        return wire.partner in ISO_3166_ALPHA2 and _ZONES.admit_all(wire.zones)
    return True


def loose_event(raw: bytes) -> Wire | None:
    """The event's loose wire model if it holds and its codes match; None sends the event to
    the strict models, which say why not."""
    try:
        wire = _LOOSE_DECODER.decode(raw)
    except (msgspec.DecodeError, UnicodeDecodeError, RecursionError):
        return None
    return wire if codes_match(wire) else None


def plain_batch(value: bytes, elements: list[msgspec.Raw], expected_type: str) -> list[Wire] | None:
    """A batch's wire models decoded in one call, or None unless every element is an event of
    the topic's type whose codes match, with its contract's fields only (extras, nulls and any
    fault take the way of single events, element by element, which says why and where).

    Repeated keys: every element's quotes number at least twice its sure keys and strings
    (``keys_may_repeat``), and one whose keys may repeat has two more; so if the whole record
    has at most one quote beyond the sum of those, none of its elements has."""
    if max(map(len, elements)) > MAX_EVENT_BYTES:
        return None
    try:
        wires = _LOOSE_BATCH_DECODER.decode(value)
    except (msgspec.DecodeError, UnicodeDecodeError, RecursionError):
        return None
    expected_wire = _LOOSE_WIRE_OF[expected_type]
    sure = 0
    for wire in wires:
        if type(wire) is not expected_wire or not codes_match(wire):
            return None
        sure += wire.quote_pairs()
    quotes = value.count(b'"')
    if quotes > 2 * sure + 1 and quotes > 2 * (sure + sum(w.quoted_amounts() for w in wires)) + 1:
        return None
    return wires


def keys_may_repeat(raw: bytes, wire: Wire) -> bool:
    """Whether the JSON text may hold more keys than the event surely has.

    Every key and every string value brings two ``"`` of its own (escaped quotes only add), so
    ``count('"') // 2`` minus the string values the event surely has bounds its number of keys at
    all depths. If that bound is no more than the keys it surely has, no key can repeat: an event
    with just its contract's fields costs one ``count``. Extra fields, nested objects and explicit
    nulls make the bound larger and cost the exact check. (Amounts written as strings are
    looked at only if the other quotes do not settle it, as in ``plain_batch``.)"""
    pairs, sure = raw.count(b'"') // 2, wire.quote_pairs()
    return pairs > sure and pairs > sure + wire.quoted_amounts()


def _quoted(raw: msgspec.Raw) -> bool:
    return bytes(raw)[:1] == b'"'


def plain_scaled(raw: bytes, places: int) -> int | None:
    """The common case without ``Decimal``: digits, optionally quoted, optionally a point and at
    most ``places`` fraction digits; ``None`` for anything else (``Decimal`` decides)."""
    if raw[:1] == b'"':
        if len(raw) < 2 or raw[-1:] != b'"':
            return None
        raw = raw[1:-1]
    whole, point, fraction = raw.partition(b".")
    if len(fraction) > places or len(whole) > 15 or not whole.isdigit():
        return None
    if not point:
        return int(whole) * _POWERS_OF_TEN[places]
    if not fraction.isdigit():
        return None
    return int(whole + fraction) * _POWERS_OF_TEN[places - len(fraction)]


_POWERS_OF_TEN: tuple[int, ...] = tuple(10**k for k in range(19))  # 15 digits and places
