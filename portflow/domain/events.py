"""The event contract (v1): the events, why one is rejected, and ``parse_record``'s promise.

A Kafka record's value is one event (a JSON object) or a batch (a JSON array of 1 to 1,000
events). ``parse_record`` validates each event on its own: a valid one becomes a ``Shipment``,
``Train`` or ``Customs`` with integer fen and kilograms; an invalid one becomes a ``Rejection``
carrying its original bytes, a code (``REJECTION_CODES``) and the reason, and its valid
neighbours still count. Nothing here knows of Kafka or Redis; nothing here raises on bad input.

Numbers are never read through a float: ``value_cny`` and ``weight_tonnes`` arrive as the exact
JSON text (number or string) and are scaled to integers with ``Decimal``.

Where each part lives: the fields' limits, patterns and enumerations in ``event_fields`` (all
exported here too); the wire models and the hot path's shortcuts, each giving the strict way's
answer faster, in ``event_decoding``.
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal, InvalidOperation

import msgspec

from portflow.domain.countries import ISO_3166_ALPHA2
from portflow.domain.event_decoding import (
    BATCH_DECODER,
    STRICT_DECODER,
    LooseCustoms,
    LooseShipment,
    LooseTrain,
    Wire,
    keys_may_repeat,
    loose_event,
    plain_batch,
    plain_scaled,
)
from portflow.domain.event_fields import (
    CUSTOMS_STATUSES,
    EARLIEST_TS,
    EVENT_TYPES,
    LATEST_TS,
    MAX_BATCH_EVENTS,
    MAX_EVENT_BYTES,
    MAX_TEU,
    MAX_VALUE_FEN,
    MAX_WEIGHT_KG,
    MAX_ZONE_LENGTH,
    MAX_ZONES,
    MODES,
    PARTNER_PATTERN,
    PORT_PATTERN,
    SHIPMENT_DIRECTIONS,
    TRADE_MODES,
    TRAIN_DIRECTIONS,
    TRAIN_SERVICES,
    ZONE_PATTERN,
)

__all__ = [
    "CUSTOMS_STATUSES",
    "EARLIEST_TS",
    "EVENT_TYPES",
    "LATEST_TS",
    "MAX_BATCH_EVENTS",
    "MAX_EVENT_BYTES",
    "MAX_REASON_CHARS",
    "MAX_TEU",
    "MAX_VALUE_FEN",
    "MAX_WEIGHT_KG",
    "MAX_ZONES",
    "MAX_ZONE_LENGTH",
    "MODES",
    "PARTNER_PATTERN",
    "PORT_PATTERN",
    "REJECTION_CODES",
    "SHIPMENT_DIRECTIONS",
    "TRADE_MODES",
    "TRAIN_DIRECTIONS",
    "TRAIN_SERVICES",
    "ZONE_PATTERN",
    "Customs",
    "Event",
    "InvalidEvent",
    "Rejection",
    "Shipment",
    "Train",
    "batch_elements",
    "internal_error",
    "parse_event",
    "parse_record",
    "scaled_decimal",
]


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


Event = Shipment | Train | Customs


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
    return [bytes(element) for element in BATCH_DECODER.decode(value)]


def parse_event(raw: bytes, expected_type: str) -> Event:
    """Validate one JSON object against the contract; raise ``InvalidEvent`` with the reason."""
    if len(raw) > MAX_EVENT_BYTES:
        raise InvalidEvent(
            f"event is {len(raw)} bytes; at most {MAX_EVENT_BYTES} allowed", "too_large"
        )
    wire = loose_event(raw) or _strict_decode(raw)
    _check_keys(raw, wire)
    event_type = type(wire).__struct_config__.tag
    if event_type != expected_type:
        raise InvalidEvent(
            f"a {event_type} event does not belong on the {expected_type} topic", "wrong_topic"
        )
    return _event_of(wire)


def _reject_non_object(value: bytes) -> None:
    """Say whether a record that is no object or array is JSON at all."""
    try:
        msgspec.json.decode(value)
    except (msgspec.DecodeError, UnicodeDecodeError, RecursionError) as exc:
        raise InvalidEvent(f"record is not valid JSON: {exc}", "not_json") from None
    raise InvalidEvent("record is not a JSON object or an array of events", "not_an_event")


def _parse_batch(value: bytes, expected_type: str) -> tuple[list[Event], list[Rejection]]:
    try:
        elements = BATCH_DECODER.decode(value)
    except (msgspec.DecodeError, UnicodeDecodeError, RecursionError) as exc:
        return [], [Rejection(f"batch record is not valid JSON: {exc}", "not_json", bytes(value))]
    if not 1 <= len(elements) <= MAX_BATCH_EVENTS:
        reason = f"batch record holds {len(elements)} events; 1 to {MAX_BATCH_EVENTS} allowed"
        return [], [Rejection(reason, "bad_batch", bytes(value))]
    try:
        events = _plain_events(value, elements, expected_type)
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


def _plain_events(
    value: bytes, elements: list[msgspec.Raw], expected_type: str
) -> list[Event] | None:
    """A batch's events taken in one call (``plain_batch``), or None: then each element takes
    the way of ``parse_event``, which says why and where."""
    wires = plain_batch(value, elements, expected_type)
    if wires is None:
        return None
    try:
        return [_event_of(wire) for wire in wires]
    except InvalidEvent:
        return None


def _strict_decode(raw: bytes) -> Wire:
    """The event's strict wire model, or ``InvalidEvent`` with the first fault msgspec finds."""
    try:
        return STRICT_DECODER.decode(raw)
    except msgspec.ValidationError as exc:
        raise InvalidEvent(f"invalid event: {exc}", "invalid_field") from None
    except (msgspec.DecodeError, UnicodeDecodeError, RecursionError) as exc:
        raise InvalidEvent(f"not valid JSON: {exc}", "not_json") from None


def _check_keys(raw: bytes, wire: Wire) -> None:
    """Reject an event in which an object repeats a key (msgspec would keep the last value).

    The exact check parses the event again, so it runs only if ``keys_may_repeat``. A field's
    rule comes first: the strict models check every occurrence of a repeated key, the loose
    ones only the last, so the strict ones have their say before a repeat is reported."""
    if not keys_may_repeat(raw, wire):
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


def _event_of(wire: Wire) -> Event:
    """The event of a decoded wire model whose codes match; raise ``InvalidEvent`` for the
    rules the wire models leave to us (time, partner, decimals)."""
    seconds = _checked_seconds(wire.ts)
    if isinstance(wire, LooseShipment):
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
            zones if len(zones) < 2 else _sorted_zones(zones),
        )
    if isinstance(wire, LooseTrain):
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
    return _customs_of(wire, seconds)


def _customs_of(wire: LooseCustoms, seconds: float) -> Customs:
    """``_event_of`` of a declaration, whose value is optional."""
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


# POSIX seconds surely inside the bounds: within a second of one, where a float might round
# across it, the datetimes decide (``_checked_seconds``).
_SURELY_AFTER_EARLIEST_S = EARLIEST_TS.timestamp() + 1
_SURELY_BEFORE_LATEST_S = LATEST_TS.timestamp() - 1


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


_DECIMAL_STRING = re.compile(r"^-?[0-9]+(\.[0-9]+)?\Z")


def scaled_decimal(raw: msgspec.Raw | bytes, places: int, maximum: int, field: str) -> int:
    """Exact integer of a JSON decimal (number or string) times 10**places, e.g. yuan to fen."""
    raw = bytes(raw)
    scaled = plain_scaled(raw, places)
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
    exponent = number.as_tuple().exponent
    if not isinstance(exponent, int):  # a letter: infinite or not a number
        raise InvalidEvent(f"{field} is not finite", "bad_number")
    if number < 0:
        raise InvalidEvent(f"{field} is negative", "bad_number")
    if exponent < -places:
        raise InvalidEvent(f"{field} has more than {places} fraction digits", "bad_number")
    if number.adjusted() + places >= len(str(maximum)) or number.scaleb(places) > maximum:
        raise InvalidEvent(f"{field} exceeds {Decimal(maximum).scaleb(-places):f}", "bad_number")
    return int(number.scaleb(places))
