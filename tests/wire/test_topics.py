"""Topics of protocol v1."""

import pytest

from wire import Kind, Topic, TopicError, device_filter, topic_for, uplink_filter


def test_topic_round_trip() -> None:
    topic = topic_for("dev-001", Kind.SUMMARY)
    assert topic == "pisces/v1/dev-001/summary"
    assert Topic.parse(topic) == Topic("dev-001", Kind.SUMMARY)


@pytest.mark.parametrize(
    "bad",
    [
        "pisces/v2/dev-001/summary",
        "pisces/v1/dev-001/unknown",
        "pisces/v1/dev 001/summary",
        "pisces/v1//summary",
        "other/v1/dev-001/summary",
        "pisces/v1/dev-001/summary/extra",
        "pisces/v1/+/summary",
    ],
)
def test_parse_rejects_foreign_topics(bad: str) -> None:
    with pytest.raises(TopicError) as info:
        Topic.parse(bad)
    assert info.value.topic == bad


def test_directions() -> None:
    assert Kind.SUMMARY.is_uplink and Kind.STATUS.is_uplink
    assert not Kind.NOTIFY.is_uplink and not Kind.CONFIG.is_uplink


def test_filters() -> None:
    assert uplink_filter() == "pisces/v1/+/+"
    assert uplink_filter("event") == "pisces/v1/+/event"
    assert device_filter("dev-9") == "pisces/v1/dev-9/#"
    with pytest.raises(ValueError):
        device_filter("dev/9")
