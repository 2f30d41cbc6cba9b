"""The fields of contract v1's events: their limits, patterns and enumerations.

``portflow.domain.events`` is the contract's front door and exports all of these; they live here
so that both it and the wire models (``portflow.domain.event_decoding``) can state them once.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Literal, get_args

import msgspec

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
PartnerCode = Annotated[str, msgspec.Meta(pattern=PARTNER_PATTERN)]
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
