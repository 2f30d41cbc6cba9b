"""Parse and validate event records (contract v1) into events with integer fen and kilograms.

A Kafka record's value is one event (a JSON object) or a batch (a JSON array of 1 to 1,000
events). Each event is validated on its own: an invalid one becomes a ``Rejection`` carrying its
original bytes and reason, and its valid neighbours still count. Nothing here knows of Kafka or
Redis; nothing here raises on bad input.

Numbers are never read through a float: ``value_cny`` and ``weight_tonnes`` arrive as the exact
JSON text (number or string) and are scaled to integers with ``Decimal``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime, timezone
from decimal import Decimal, InvalidOperation
from typing import Annotated, Literal, Optional, Union

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
EARLIEST_TS = datetime(1900, 1, 1, tzinfo=timezone.utc)
LATEST_TS = datetime(3000, 1, 1, tzinfo=timezone.utc)

Identifier = Annotated[str, msgspec.Meta(min_length=1, max_length=128)]
PortCode = Annotated[str, msgspec.Meta(pattern=r"^[a-z0-9][a-z0-9-]{0,39}$")]
ZoneCode = Annotated[str, msgspec.Meta(pattern=r"^[a-z0-9]+(-[a-z0-9]+)*$", max_length=64)]
Mode = Literal["road", "rail", "water", "air", "pipeline"]
TradeMode = Literal["general", "border_small_volume", "bonded_logistics", "processing", "other"]
CustomsStatus = Literal["filed", "inspected", "held", "released", "rejected"]


# Wire models: what the JSON must look like. Decimal fields stay raw JSON text until scaled.
class _ShipmentWire(msgspec.Struct, tag_field="type", tag="shipment"):
    event_id: Identifier
    ts: datetime
    port: PortCode
    mode: Mode
    direction: Literal["import", "export"]
    value_cny: msgspec.Raw
    weight_tonnes: msgspec.Raw
    partner: Annotated[str, msgspec.Meta(pattern=r"^[A-Z]{2}$")]
    trade_mode: TradeMode
    zones: Annotated[list[ZoneCode], msgspec.Meta(max_length=MAX_ZONES)]


class _TrainWire(msgspec.Struct, tag_field="type", tag="train"):
    event_id: Identifier
    ts: datetime
    port: PortCode
    service: Literal["china-europe", "china-asia"]
    direction: Literal["outbound", "inbound"]
    teu: Annotated[int, msgspec.Meta(ge=0, le=MAX_TEU)]
    train_id: Optional[Annotated[str, msgspec.Meta(max_length=128)]] = None


class _CustomsWire(msgspec.Struct, tag_field="type", tag="customs"):
    event_id: Identifier
    ts: datetime
    port: PortCode
    declaration_id: Identifier
    status: CustomsStatus
    trade_mode: Optional[TradeMode] = None
    value_cny: msgspec.Raw = msgspec.field(default_factory=lambda: _JSON_NULL)


_JSON_NULL = msgspec.Raw(b"null")
_EVENT_DECODER = msgspec.json.Decoder(Union[_ShipmentWire, _TrainWire, _CustomsWire])
_BATCH_DECODER = msgspec.json.Decoder(list[msgspec.Raw])
_PLAIN_DECIMAL = re.compile(rb'^("?)([0-9]+)(?:\.([0-9]+))?"?$')
_DECIMAL_STRING = re.compile(r"^-?[0-9]+(\.[0-9]+)?$")


@dataclass(frozen=True, slots=True)
class Shipment:
    event_id: str
    ts: datetime
    port: str
    mode: str
    direction: str
    value_fen: int
    weight_kg: int
    partner: str
    trade_mode: str
    zones: tuple[str, ...]  # sorted, without repeats

    type = "shipment"


@dataclass(frozen=True, slots=True)
class Train:
    event_id: str
    ts: datetime
    port: str
    service: str
    direction: str
    teu: int
    train_id: Optional[str]

    type = "train"


@dataclass(frozen=True, slots=True)
class Customs:
    event_id: str
    ts: datetime
    port: str
    declaration_id: str
    status: str
    trade_mode: Optional[str]
    value_fen: Optional[int]

    type = "customs"


Event = Union[Shipment, Train, Customs]


@dataclass(frozen=True, slots=True)
class Rejection:
    """An event or record that changes no total: its original bytes and why."""

    reason: str
    code: str  # one of REJECTION_CODES
    raw: bytes
    batch_index: Optional[int] = None  # position in a batch record; None for a whole record


# Bounded rejection categories, for metric labels; the free-text reason says the details.
REJECTION_CODES = ("not_json", "not_an_event", "bad_batch", "too_large", "invalid_field",
                   "wrong_topic", "bad_timestamp", "bad_number", "unknown_partner")


class InvalidEvent(ValueError):
    """An event that breaks the contract; the message is the reason users see on the DLQ."""

    def __init__(self, reason: str, code: str) -> None:
        super().__init__(reason)
        self.code = code


def parse_record(value: bytes, expected_type: str) -> tuple[list[Event], list[Rejection]]:
    """Split one record into its valid events and its rejections (never raises on bad input)."""
    start = value.lstrip()[:1]
    if start == b"[":
        return _parse_batch(value, expected_type)
    try:
        if start != b"{":
            _reject_non_object(value)
        return [parse_event(value, expected_type)], []
    except InvalidEvent as exc:
        return [], [Rejection(str(exc), exc.code, bytes(value))]


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
    except (msgspec.DecodeError, UnicodeDecodeError) as exc:
        return [], [Rejection(f"batch record is not valid JSON: {exc}", "not_json", bytes(value))]
    if not 1 <= len(elements) <= MAX_BATCH_EVENTS:
        reason = f"batch record holds {len(elements)} events; 1 to {MAX_BATCH_EVENTS} allowed"
        return [], [Rejection(reason, "bad_batch", bytes(value))]
    events: list[Event] = []
    rejections: list[Rejection] = []
    for index, element in enumerate(elements):
        raw = bytes(element)
        try:
            if raw[:1] != b"{":
                raise InvalidEvent("batch element is not a JSON object", "not_an_event")
            events.append(parse_event(raw, expected_type))
        except InvalidEvent as exc:
            rejections.append(Rejection(str(exc), exc.code, raw, index))
    return events, rejections


def parse_event(raw: bytes, expected_type: str) -> Event:
    """Validate one JSON object against the contract; raise ``InvalidEvent`` with the reason."""
    if len(raw) > MAX_EVENT_BYTES:
        raise InvalidEvent(f"event is {len(raw)} bytes; at most {MAX_EVENT_BYTES} allowed",
                           "too_large")
    try:
        wire = _EVENT_DECODER.decode(raw)
    except msgspec.ValidationError as exc:
        raise InvalidEvent(f"invalid event: {exc}", "invalid_field") from None
    except (msgspec.DecodeError, UnicodeDecodeError, RecursionError) as exc:
        raise InvalidEvent(f"not valid JSON: {exc}", "not_json") from None
    event_type = type(wire).__struct_config__.tag
    if event_type != expected_type:
        raise InvalidEvent(f"a {event_type} event does not belong on the {expected_type} topic",
                           "wrong_topic")
    if wire.ts.tzinfo is None:
        raise InvalidEvent("ts has no UTC offset (RFC 3339 needs one, e.g. +08:00 or Z)",
                           "bad_timestamp")
    if not EARLIEST_TS <= wire.ts < LATEST_TS:
        raise InvalidEvent("ts is before 1900 or after 2999", "bad_timestamp")
    if isinstance(wire, _ShipmentWire):
        if wire.partner not in ISO_3166_ALPHA2:
            raise InvalidEvent(f"partner {wire.partner!r} is not an ISO 3166-1 alpha-2 code",
                               "unknown_partner")
        return Shipment(
            event_id=wire.event_id,
            ts=wire.ts,
            port=wire.port,
            mode=wire.mode,
            direction=wire.direction,
            value_fen=scaled_decimal(wire.value_cny, 2, MAX_VALUE_FEN, "value_cny"),
            weight_kg=scaled_decimal(wire.weight_tonnes, 3, MAX_WEIGHT_KG, "weight_tonnes"),
            partner=wire.partner,
            trade_mode=wire.trade_mode,
            zones=tuple(sorted(set(wire.zones))),
        )
    if isinstance(wire, _TrainWire):
        return Train(
            event_id=wire.event_id,
            ts=wire.ts,
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
        port=wire.port,
        declaration_id=wire.declaration_id,
        status=wire.status,
        trade_mode=wire.trade_mode,
        value_fen=value_fen,
    )


def scaled_decimal(raw: msgspec.Raw | bytes, places: int, maximum: int, field: str) -> int:
    """Exact integer of a JSON decimal (number or string) times 10**places, e.g. yuan to fen."""
    raw = bytes(raw)
    plain = _PLAIN_DECIMAL.match(raw)
    if (plain and len(plain[3] or b"") <= places and len(plain[2]) < 16
            and bool(plain[1]) == raw.endswith(b'"')):
        # The common case, without Decimal: digits, optionally a point and few enough digits.
        fraction = plain[3] or b""
        scaled = int(plain[2]) * 10**places + int(fraction.ljust(places, b"0") or b"0")
        if scaled <= maximum:
            return scaled
    text = raw.decode()
    if text.startswith('"'):
        text = msgspec.json.decode(text)
        if not _DECIMAL_STRING.match(text):
            raise InvalidEvent(
                f"{field} {text!r} is not a plain decimal string like \"1234.56\"", "bad_number")
    elif not text or text[0] not in "-0123456789":
        raise InvalidEvent(f"{field} must be a decimal number or string, not {text[:20]}",
                           "bad_number")
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
    scaled = number.scaleb(places)
    if scaled > maximum:
        raise InvalidEvent(f"{field} exceeds {Decimal(maximum).scaleb(-places):f}", "bad_number")
    return int(scaled)
