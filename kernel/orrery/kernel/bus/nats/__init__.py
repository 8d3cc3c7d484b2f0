"""The NATS backend of the event bus: core NATS between nodes, JetStream for durable
subscriptions, CloudEvents JSON on the wire."""

from ._bus import NatsBus
from ._connect import describe_url
from ._jetstream import consumer_name, covers
from ._wire import decode_event, encode_event

__all__ = ["NatsBus", "consumer_name", "covers", "decode_event", "describe_url", "encode_event"]
