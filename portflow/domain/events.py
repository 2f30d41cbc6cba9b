"""Parse and validate event records (contract v1) into events with integer fen and kilograms.

A Kafka record's value is one event (a JSON object) or a batch (a JSON array of 1 to 1,000
events). Each event is validated on its own: an invalid one becomes a ``Rejection`` carrying its
original bytes and reason, and its valid neighbours still count. Nothing here knows of Kafka or
Redis; nothing here raises on bad input.

Numbers are never read through a float: ``value_cny`` and ``weight_tonnes`` arrive as the exact
JSON text (number or string) and are scaled to integers with ``Decimal``.

Speed: the batched worker parses tens of thousands of events a second, so the common case avoids
per-event Python work that does not decide anything. Events are decoded with *loose* wire models
first (no string patterns: msgspec calls Python's ``re`` for each patterned value), and port and
zone codes are checked against the distinct codes already seen. Anything the loose models reject,
or that they accept but the contract does not, is decoded again with the *strict* models, which
stay the one source of every field's rule and reason.
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation
from typing import Annotated, Literal, Union, get_args

import msgspec

from portflow.domain.countries import ISO_3166_ALPHA2

EVENT_TYPES = ("shipment", "train", "customs")
MAX_EVENT_BYTES = 64 * 1024
MAX_BATCH_EVENTS = 1000
MAX_ZONES = 32
# Upper bounds keep every running total far inside Redis' signed 64-bit integers.
MAX_VALUE_FEN = 10**14  # one trillion yuan in one event
MAX_WEIGHT_KG = 10**12  # one billion tonnes in one event
MAX_TEU = 100_000
# Event times outside these years are surely wrong, and near year 1 or 9999 the reporting time
# zone's calendar would leave the range of dates.
EARLIEST_TS = datetime(1900, 1, 1, tzinfo=UTC)
LATEST_TS = datetime(3000, 1, 1, tzinfo=UTC)

# The contract's patterns, anchored with \Z: Python's "$" also matches before a final newline,
# which would let "khorgos\n" through (and into the aggregates' cell names).
PORT_PATTERN = r"^[a-z0-9][a-z0-9-]{0,39}\Z"
ZONE_PATTERN = r"^[a-z0-9]+(-[a-z0-9]+)*\Z"
MAX_ZONE_LENGTH = 64
PARTNER_PATTERN = r"^[A-Z]{2}\Z"

Identifier = Annotated[str, msgspec.Meta(min_length=1, max_length=128)]
PortCode = Annotated[str, msgspec.Meta(pattern=PORT_PATTERN)]
ZoneCode = Annotated[str, msgspec.Meta(pattern=ZONE_PATTERN, max_length=MAX_ZONE_LENGTH)]
Mode = Literal["road", "rail", "water", "air", "pipeline"]
TradeMode = Literal["general", "border_small_volume", "bonded_logistics", "processing", "other"]
CustomsStatus = Literal["filed", "inspected", "held", "released", "rejected"]
ShipmentDirection = Literal["import", "export"]
TrainService = Literal["china-europe", "china-asia"]
TrainDirection = Literal["outbound", "inbound"]

# The contract's enumerations, in its order, for whatever lists them (metric labels, generators).
MODES = get_args(Mode)
TRADE_MODES = get_args(TradeMode)
CUSTOMS_STATUSES = get_args(CustomsStatus)
SHIPMENT_DIRECTIONS = get_args(ShipmentDirection)
TRAIN_SERVICES = get_args(TrainService)
TRAIN_DIRECTIONS = get_args(TrainDirection)


# Wire models: what the JSON must look like. Decimal fields stay raw JSON text until scaled.
# The loose models leave out the patterns of the codes; the strict ones (``_*Wire``) add them
# back in the same field positions, so msgspec reports the same first fault as ever. A loose
# shipment's zones come as a tuple, as its event keeps them. (``gc=False``: a decoded wire
# model holds no cycle, and a batch record brings hundreds of them to the garbage collector.)
class _LooseShipment(msgspec.Struct, tag_field="type", tag="shipment", gc=False):
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
        (``_keys_may_repeat``), amounts written as strings aside (``quoted_amounts``: they
        cost a look, so a batch record looks only if its quotes are more than these)."""
        return 11 + 8 + len(self.zones)

    def quoted_amounts(self) -> int:
        return _quoted(self.value_cny) + _quoted(self.weight_tonnes)


class _LooseTrain(msgspec.Struct, tag_field="type", tag="train", gc=False):
    event_id: Identifier
    ts: datetime
    port: str
    service: TrainService
    direction: TrainDirection
    teu: Annotated[int, msgspec.Meta(ge=0, le=MAX_TEU)]
    train_id: Annotated[str, msgspec.Meta(max_length=128)] | None = None

    def quote_pairs(self) -> int:
        named = self.train_id is not None  # an explicit null is not counted: it costs a check
        return 7 + 6 + 2 * named

    def quoted_amounts(self) -> int:
        return 0


class _LooseCustoms(msgspec.Struct, tag_field="type", tag="customs", gc=False):
    event_id: Identifier
    ts: datetime
    port: str
    declaration_id: Identifier
    status: CustomsStatus
    trade_mode: TradeMode | None = None
    value_cny: msgspec.Raw = msgspec.field(default_factory=lambda: _JSON_NULL)

    def quote_pairs(self) -> int:
        traded = self.trade_mode is not None
        valued = bytes(self.value_cny) != b"null"  # an explicit null is not counted either
        return 6 + 6 + 2 * traded + valued

    def quoted_amounts(self) -> int:
        return _quoted(self.value_cny)


class _ShipmentWire(_LooseShipment, tag="shipment"):
    port: PortCode
    partner: Annotated[str, msgspec.Meta(pattern=PARTNER_PATTERN)]
    zones: Annotated[list[ZoneCode], msgspec.Meta(max_length=MAX_ZONES)]


class _TrainWire(_LooseTrain, tag="train"):
    port: PortCode


class _CustomsWire(_LooseCustoms, tag="customs"):
    port: PortCode


_Wire = Union[_LooseShipment, _LooseTrain, _LooseCustoms]
_JSON_NULL = msgspec.Raw(b"null")
_LOOSE_DECODER = msgspec.json.Decoder(_Wire)
_EVENT_DECODER = msgspec.json.Decoder(Union[_ShipmentWire, _TrainWire, _CustomsWire])
_BATCH_DECODER = msgspec.json.Decoder(list[msgspec.Raw])
# A union, as for single events: outside a union msgspec would not require a struct's tag.
_LOOSE_BATCH_DECODER = msgspec.json.Decoder(list[_Wire])
_LOOSE_WIRE_OF = {
    wire.__struct_config__.tag: wire for wire in (_LooseShipment, _LooseTrain, _LooseCustoms)
}
_DECIMAL_STRING = re.compile(r"^-?[0-9]+(\.[0-9]+)?\Z")
# POSIX seconds surely inside the bounds: within a second of one, where a float might round
# across it, the datetimes decide (``_checked_seconds``).
_SURELY_AFTER_EARLIEST_S = EARLIEST_TS.timestamp() + 1
_SURELY_BEFORE_LATEST_S = LATEST_TS.timestamp() - 1


class _KnownCodes:
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


_PORTS = _KnownCodes(PORT_PATTERN)
_ZONES = _KnownCodes(ZONE_PATTERN, MAX_ZONE_LENGTH)


# The events: msgspec structs, built about ten times faster than frozen dataclasses, and (with
# ``gc=False``; they hold no containers of their own) of no concern to the garbage collector.
class Shipment(msgspec.Struct, frozen=True, gc=False):
    event_id: str
    ts: datetime
    ts_seconds: float  # ts.timestamp(), computed once
    port: str
    mode: str
    direction: str
    value_fen: int
    weight_kg: int
    partner: str
    trade_mode: str
    zones: tuple[str, ...]  # sorted, without repeats

    type = "shipment"


class Train(msgspec.Struct, frozen=True, gc=False):
    event_id: str
    ts: datetime
    ts_seconds: float
    port: str
    service: str
    direction: str
    teu: int
    train_id: str | None

    type = "train"


class Customs(msgspec.Struct, frozen=True, gc=False):
    event_id: str
    ts: datetime
    ts_seconds: float
    port: str
    declaration_id: str
    status: str
    trade_mode: str | None
    value_fen: int | None

    type = "customs"


Event = Union[Shipment, Train, Customs]


@dataclass(frozen=True, slots=True)
class Rejection:
    """An event or record that changes no total: its original bytes and why."""

    reason: str
    code: str  # one of REJECTION_CODES
    raw: bytes
    batch_index: int | None = None  # position in a batch record; None for a whole record


# Bounded rejection categories, for metric labels; the free-text reason says the details.
REJECTION_CODES = (
    "not_json",
    "not_an_event",
    "bad_batch",
    "too_large",
    "invalid_field",
    "wrong_topic",
    "bad_timestamp",
    "bad_number",
    "unknown_partner",
    "duplicate_key",
    "event_time_ahead",
    "event_time_behind",
    "internal_error",
)
MAX_REASON_CHARS = 500  # of an exception's message in an internal_error's reason


def internal_error(raw: bytes, exc: BaseException, batch_index: int | None = None) -> Rejection:
    """The rejection of input that made portflow's own code raise (a bug, or a case nobody
    foresaw): it belongs to that input alone, so its neighbours still count."""
    reason = f"internal error: {type(exc).__name__}: {exc}"
    if len(reason) > MAX_REASON_CHARS:
        reason = reason[:MAX_REASON_CHARS] + "…"
    return Rejection(reason, "internal_error", bytes(raw), batch_index)


class InvalidEvent(ValueError):
    """An event that breaks the contract; the message is the reason users see on the DLQ."""

    def __init__(self, reason: str, code: str) -> None:
        super().__init__(reason)
        self.code = code


def parse_record(value: bytes, expected_type: str) -> tuple[list[Event], list[Rejection]]:
    """Split one record into its valid events and its rejections. Never raises: whatever the
    bytes, an exception nobody foresaw makes the record an ``internal_error`` rejection."""
    try:
        start = value.lstrip()[:1]
        if start == b"[":
            return _parse_batch(value, expected_type)
        try:
            if start != b"{":
                _reject_non_object(value)
            return [parse_event(value, expected_type)], []
        except InvalidEvent as exc:
            return [], [Rejection(str(exc), exc.code, bytes(value))]
    except Exception as exc:
        return [], [internal_error(value, exc)]


def batch_elements(value: bytes) -> list[bytes]:
    """The elements of a batch record as bytes (for a record ``parse_record`` accepted)."""
    return [bytes(element) for element in _BATCH_DECODER.decode(value)]


def _reject_non_object(value: bytes) -> None:
    """Say whether a record that is no object or array is JSON at all."""
    try:
        msgspec.json.decode(value)
    except (msgspec.DecodeError, UnicodeDecodeError, RecursionError) as exc:
        raise InvalidEvent(f"record is not valid JSON: {exc}", "not_json") from None
    raise InvalidEvent("record is not a JSON object or an array of events", "not_an_event")


def _parse_batch(value: bytes, expected_type: str) -> tuple[list[Event], list[Rejection]]:
    try:
        elements = _BATCH_DECODER.decode(value)
    except (msgspec.DecodeError, UnicodeDecodeError, RecursionError) as exc:
        return [], [Rejection(f"batch record is not valid JSON: {exc}", "not_json", bytes(value))]
    if not 1 <= len(elements) <= MAX_BATCH_EVENTS:
        reason = f"batch record holds {len(elements)} events; 1 to {MAX_BATCH_EVENTS} allowed"
        return [], [Rejection(reason, "bad_batch", bytes(value))]
    try:
        events = _plain_batch(value, elements, expected_type)
    except Exception:
        events = None
    if events is not None:
        return events, []
    events = []
    rejections: list[Rejection] = []
    for index, element in enumerate(elements):
        raw = bytes(element)
        try:
            if raw[:1] != b"{":
                raise InvalidEvent("batch element is not a JSON object", "not_an_event")
            events.append(parse_event(raw, expected_type))
        except InvalidEvent as exc:
            rejections.append(Rejection(str(exc), exc.code, raw, index))
        except Exception as exc:
            rejections.append(internal_error(raw, exc, index))
    return events, rejections


def _plain_batch(
    value: bytes, elements: list[msgspec.Raw], expected_type: str
) -> list[Event] | None:
    """A batch's events decoded in one call, or None unless every element is a valid event of
    the topic's type with its contract's fields only (extras, nulls and any fault take the way
    of ``parse_event``, element by element, which says why and where).

    Repeated keys: every element's quotes number at least twice its sure keys and strings
    (``_keys_may_repeat``), and one whose keys may repeat has two more; so if the whole record
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
        if type(wire) is not expected_wire or not _codes_match(wire):
            return None
        sure += wire.quote_pairs()
    quotes = value.count(b'"')
    if quotes > 2 * sure + 1 and quotes > 2 * (sure + sum(w.quoted_amounts() for w in wires)) + 1:
        return None
    try:
        return [_event_of(wire) for wire in wires]
    except InvalidEvent:
        return None


def parse_event(raw: bytes, expected_type: str) -> Event:
    """Validate one JSON object against the contract; raise ``InvalidEvent`` with the reason."""
    if len(raw) > MAX_EVENT_BYTES:
        raise InvalidEvent(
            f"event is {len(raw)} bytes; at most {MAX_EVENT_BYTES} allowed", "too_large"
        )
    wire = _decode(raw)
    _check_keys(raw, wire)
    event_type = type(wire).__struct_config__.tag
    if event_type != expected_type:
        raise InvalidEvent(
            f"a {event_type} event does not belong on the {expected_type} topic", "wrong_topic"
        )
    return _event_of(wire)


def _event_of(wire: _Wire) -> Event:
    """The event of a decoded wire model whose codes match; raise ``InvalidEvent`` for the
    rules the wire models leave to us (time, partner, decimals)."""
    seconds = _checked_seconds(wire.ts)
    if isinstance(wire, _LooseShipment):
        if wire.partner not in ISO_3166_ALPHA2:
            raise InvalidEvent(
                f"partner {wire.partner!r} is not an ISO 3166-1 alpha-2 code", "unknown_partner"
            )
        zones = wire.zones
        return Shipment(  # (by position: the fields' order, and cheaper than by name)
            wire.event_id,
            wire.ts,
            seconds,
            wire.port,
            wire.mode,
            wire.direction,
            scaled_decimal(wire.value_cny, 2, MAX_VALUE_FEN, "value_cny"),
            scaled_decimal(wire.weight_tonnes, 3, MAX_WEIGHT_KG, "weight_tonnes"),
            wire.partner,
            wire.trade_mode,
            tuple(zones) if len(zones) < 2 else _sorted_zones(zones),
        )
    if isinstance(wire, _LooseTrain):
        return Train(
            event_id=wire.event_id,
            ts=wire.ts,
            ts_seconds=seconds,
            port=wire.port,
            service=wire.service,
            direction=wire.direction,
            teu=wire.teu,
            train_id=wire.train_id,
        )
    value_fen = None
    if bytes(wire.value_cny) != b"null":  # absent or null: the declaration carries no value
        value_fen = scaled_decimal(wire.value_cny, 2, MAX_VALUE_FEN, "value_cny")
    return Customs(
        event_id=wire.event_id,
        ts=wire.ts,
        ts_seconds=seconds,
        port=wire.port,
        declaration_id=wire.declaration_id,
        status=wire.status,
        trade_mode=wire.trade_mode,
        value_fen=value_fen,
    )


def _sorted_zones(zones: Sequence[str]) -> tuple[str, ...]:
    """Zones sorted, without repeats; two distinct zones (the common case of several) without
    building a set."""
    if len(zones) == 2 and zones[0] != zones[1]:
        return tuple(zones) if zones[0] < zones[1] else (zones[1], zones[0])
    return tuple(sorted(set(zones)))


def _decode(raw: bytes) -> _Wire:
    """The event's wire model: the loose one if it holds and its codes match their patterns,
    else the strict one, which raises with the contract's reason."""
    try:
        wire = _LOOSE_DECODER.decode(raw)
    except (msgspec.DecodeError, UnicodeDecodeError, RecursionError):
        wire = None
    if wire is not None and _codes_match(wire):
        return wire
    return _strict_decode(raw)


def _strict_decode(raw: bytes) -> _Wire:
    try:
        return _EVENT_DECODER.decode(raw)
    except msgspec.ValidationError as exc:
        raise InvalidEvent(f"invalid event: {exc}", "invalid_field") from None
    except (msgspec.DecodeError, UnicodeDecodeError, RecursionError) as exc:
        raise InvalidEvent(f"not valid JSON: {exc}", "not_json") from None


def _codes_match(wire: _Wire) -> bool:
    """Whether the codes the loose models leave unchecked match the strict models' patterns.

    A partner outside ISO 3166 counts as a mismatch: the strict model then tells a malformed
    code (``invalid_field``) from a well-formed unknown one (``unknown_partner``)."""
    if not _PORTS.admit(wire.port):
        return False
    if isinstance(wire, _LooseShipment):
        return wire.partner in ISO_3166_ALPHA2 and _ZONES.admit_all(wire.zones)
    return True


def _quoted(raw: msgspec.Raw) -> bool:
    return bytes(raw)[:1] == b'"'


def _check_keys(raw: bytes, wire: _Wire) -> None:
    """Reject an event in which an object repeats a key (msgspec would keep the last value).

    The exact check parses the event again, so it runs only if ``_keys_may_repeat``. A field's
    rule comes first: the strict models check every occurrence of a repeated key, the loose
    ones only the last, so the strict ones have their say before a repeat is reported."""
    if not _keys_may_repeat(raw, wire):
        return
    try:
        json.loads(raw, object_pairs_hook=_unique_keys, parse_int=str, parse_float=str)
    except _RepeatedKey as repeated:
        _strict_decode(raw)
        raise InvalidEvent(
            f"key {repeated.key!r} appears more than once in an object of the event",
            "duplicate_key",
        ) from None
    except (RecursionError, json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise InvalidEvent(f"not valid JSON: {exc}", "not_json") from None


def _keys_may_repeat(raw: bytes, wire: _Wire) -> bool:
    """Whether the JSON text may hold more keys than the event surely has.

    Every key and every string value brings two ``"`` of its own (escaped quotes only add), so
    ``count('"') // 2`` minus the string values the event surely has bounds its number of keys at
    all depths. If that bound is no more than the keys it surely has, no key can repeat: an event
    with just its contract's fields costs one ``count``. Extra fields, nested objects and explicit
    nulls make the bound larger and cost the exact check. (Amounts written as strings are
    looked at only if the other quotes do not settle it, as in ``_plain_batch``.)"""
    pairs, sure = raw.count(b'"') // 2, wire.quote_pairs()
    return pairs > sure and pairs > sure + wire.quoted_amounts()


class _RepeatedKey(Exception):
    def __init__(self, key: str) -> None:
        super().__init__(key)
        self.key = key


def _unique_keys(pairs: list[tuple[str, object]]) -> None:
    seen: set[str] = set()
    for key, _ in pairs:
        if key in seen:
            raise _RepeatedKey(key)
        seen.add(key)


def _checked_seconds(ts: datetime) -> float:
    """``ts`` as POSIX seconds, once its offset and range are checked."""
    if ts.tzinfo is None:
        raise InvalidEvent(
            "ts has no UTC offset (RFC 3339 needs one, e.g. +08:00 or Z)", "bad_timestamp"
        )
    seconds = ts.timestamp()
    # (comparing floats is cheaper than comparing aware datetimes)
    if (
        not _SURELY_AFTER_EARLIEST_S < seconds < _SURELY_BEFORE_LATEST_S
        and not EARLIEST_TS <= ts < LATEST_TS
    ):
        raise InvalidEvent("ts is before 1900 or after 2999", "bad_timestamp")
    return seconds


def scaled_decimal(raw: msgspec.Raw | bytes, places: int, maximum: int, field: str) -> int:
    """Exact integer of a JSON decimal (number or string) times 10**places, e.g. yuan to fen."""
    raw = bytes(raw)
    scaled = _plain_scaled(raw, places)
    if scaled is not None and scaled <= maximum:
        return scaled
    try:
        text = raw.decode()
        if text.startswith('"'):
            text = msgspec.json.decode(text)
    except (UnicodeDecodeError, msgspec.DecodeError):  # msgspec.Raw checks no UTF-8 inside
        raise InvalidEvent(f"{field} is not valid UTF-8 JSON", "bad_number") from None
    if raw[:1] == b'"':
        if not _DECIMAL_STRING.match(text):
            raise InvalidEvent(
                f'{field} {text!r} is not a plain decimal string like "1234.56"', "bad_number"
            )
    elif not text or text[0] not in "-0123456789":
        raise InvalidEvent(
            f"{field} must be a decimal number or string, not {text[:20]}", "bad_number"
        )
    try:
        number = Decimal(text)
    except InvalidOperation:
        raise InvalidEvent(f"{field} {text[:40]!r} is not a decimal number", "bad_number") from None
    if not number.is_finite():
        raise InvalidEvent(f"{field} is not finite", "bad_number")
    if number < 0:
        raise InvalidEvent(f"{field} is negative", "bad_number")
    if number.as_tuple().exponent < -places:
        raise InvalidEvent(f"{field} has more than {places} fraction digits", "bad_number")
    if number.adjusted() + places >= len(str(maximum)) or number.scaleb(places) > maximum:
        raise InvalidEvent(f"{field} exceeds {Decimal(maximum).scaleb(-places):f}", "bad_number")
    return int(number.scaleb(places))


def _plain_scaled(raw: bytes, places: int) -> int | None:
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


_POWERS_OF_TEN = tuple(10**k for k in range(19))  # (for _plain_scaled: 15 digits and places)
