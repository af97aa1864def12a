"""Events on Redis Streams: typed records, an outbox in Postgres relayed to the streams, consumer groups."""

from cidadao.events.outbox import emit, relay
from cidadao.events.streams import Consumer, apply_once, apply_once_many
from cidadao.events.types import EVENTS, Event, EventError, decode, encode, make, stream_of

__all__ = [
    "EVENTS",
    "Consumer",
    "Event",
    "EventError",
    "apply_once",
    "apply_once_many",
    "decode",
    "emit",
    "encode",
    "make",
    "relay",
    "stream_of",
]
