"""The wire contract shared by the edge agent, the server and the simulators.

Sans-I/O: topics, message dataclasses, their byte encoding and the BLE GATT
payload decoders. Nothing here opens a socket or a file.
"""

from wire.codec import decode, decode_uplink, encode
from wire.errors import GattDecodeError, TopicError, WireDecodeError, WireError
from wire.messages import (
    ACTIVITY_CLASSES,
    RHYTHM_FLAGS,
    SCHEMA_VERSION,
    Config,
    Event,
    EventType,
    Level,
    Limits,
    Message,
    Notify,
    Status,
    Strip,
    Summary,
    SummaryWindow,
    Uplink,
)
from wire.broker import BrokerAddress
from wire.topics import Kind, Topic, device_filter, topic_for, uplink_filter

__all__ = [
    "ACTIVITY_CLASSES",
    "BrokerAddress",
    "RHYTHM_FLAGS",
    "SCHEMA_VERSION",
    "Config",
    "Event",
    "EventType",
    "GattDecodeError",
    "Kind",
    "Level",
    "Limits",
    "Message",
    "Notify",
    "Status",
    "Strip",
    "Summary",
    "SummaryWindow",
    "Topic",
    "TopicError",
    "Uplink",
    "WireDecodeError",
    "WireError",
    "decode",
    "decode_uplink",
    "device_filter",
    "encode",
    "topic_for",
    "uplink_filter",
]
