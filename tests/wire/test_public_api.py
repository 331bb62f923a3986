"""The wire package's public face is pinned: changing it is a contract change."""

import wire


def test_all_is_pinned() -> None:
    expected = {
        "ACTIVITY_CLASSES", "BrokerAddress", "Config", "Event", "EventType", "GattDecodeError",
        "Kind", "Level", "Limits", "Message", "Notify", "RHYTHM_FLAGS", "SCHEMA_VERSION", "Status",
        "Strip", "Summary", "SummaryWindow", "Topic", "TopicError", "Uplink", "WireDecodeError",
        "WireError", "decode", "decode_uplink", "device_filter", "encode", "topic_for", "uplink_filter",
    }
    assert expected <= set(wire.__all__)
    assert all(hasattr(wire, name) for name in wire.__all__)


def test_broker_address() -> None:
    addr = wire.BrokerAddress.parse("mqtt://dev%2D1:s3cret@127.0.0.1:1884")
    assert (addr.host, addr.port, addr.username, addr.password) == ("127.0.0.1", 1884, "dev-1", "s3cret")
    assert wire.BrokerAddress.parse("mqtts://broker.local").port == 8883
    assert "s3cret" not in addr.url()
