"""docs/protocol.md must agree with the code: every JSON example decodes as documented, and its
shell example works with the plain Mosquitto clients against a real broker."""

from __future__ import annotations

import json
import queue
import re
import shutil
import subprocess
import time
from pathlib import Path

import pytest

from tests.server.helpers import mqtt_client
from wire import (
    BrokerAddress, Config, Event, EventType, Kind, Limits, Summary, Topic, WireDecodeError, decode, decode_uplink,
    encode, topic_for,
)  # fmt: skip

DOC = Path(__file__).resolve().parents[2] / "docs" / "protocol.md"


def json_examples() -> list[str]:
    blocks = re.findall(r"```json\n(.*?)```", DOC.read_text(), flags=re.S)
    return [line for block in blocks for line in block.splitlines() if line.strip()]


def test_the_document_has_an_example_of_every_kind() -> None:
    kinds = {json.loads(line)["kind"] for line in json_examples()}
    assert kinds == {k.value for k in Kind}


@pytest.mark.parametrize("example", json_examples())
def test_each_example_decodes_and_round_trips(example: str) -> None:
    message = decode(example.encode())
    assert decode(encode(message)) == message
    fields = json.loads(example)
    assert {k: v for k, v in json.loads(encode(message)).items() if k in fields} == fields


def test_the_topic_table_matches_the_code() -> None:
    documented = re.findall(r"^pisces/v1/<device>/(\w+)\s+(up|down)", DOC.read_text(), flags=re.M)
    assert {(k, d == "up") for k, d in documented} == {(k.value, k.is_uplink) for k in Kind}
    assert str(Topic("dev-001", Kind.SUMMARY)) == "pisces/v1/dev-001/summary"


def shell_example() -> list[str]:
    """The lines of the "Trying it with a plain MQTT client" block, comments and blank lines dropped."""
    section = DOC.read_text().split("## Trying it with a plain MQTT client", 1)[1]
    block = re.search(r"```sh\n(.*?)```", section, flags=re.S)
    assert block, "the section lost its shell example"
    joined = block.group(1).replace("\\\n", " ")
    return [line for line in joined.splitlines() if line.strip() and not line.lstrip().startswith("#")]


def _on_broker(line: str, url: str, device: str) -> str:
    address = BrokerAddress.parse(url)
    return line.replace("-h 127.0.0.1 -p 1883", f"-h {address.host} -p {address.port}").replace("dev-001", device)


@pytest.mark.mqtt
def test_the_shell_example_works_with_the_plain_mosquitto_clients(mqtt_url: str, device_id: str) -> None:
    """Run as written (on this run's broker, with a device of its own): what it sends is what the doc says."""
    if not (shutil.which("mosquitto_pub") and shutil.which("mosquitto_sub")):
        pytest.skip("mosquitto_pub/mosquitto_sub not installed (Debian: mosquitto-clients)")
    watch, *send = [_on_broker(line, mqtt_url, device_id) for line in shell_example()]
    assert watch.startswith("mosquitto_sub ") and all("mosquitto_pub" in s or "=" in s for s in send)
    got: queue.SimpleQueue[tuple[str, bytes]] = queue.SimpleQueue()
    sub = mqtt_client(mqtt_url)
    sub.on_message = lambda c, u, m: got.put((m.topic, m.payload))
    sub.subscribe(f"pisces/v1/{device_id}/+", qos=1)
    config = Config(device_id, 3, 1_763_900_000.0, limits=(("hr", Limits(yellow_high=111, red_high=131)),))
    try:
        time.sleep(0.3)  # the subscription settles
        subprocess.run(["bash", "-euo", "pipefail", "-c", "\n".join(send)], check=True, timeout=30)
        received = [got.get(timeout=10) for _ in range(3)]
        # what the phone would receive: a retained config, read back by the watch line as written
        sub.publish(topic_for(device_id, Kind.CONFIG), encode(config), qos=1, retain=True).wait_for_publish(5)
        shown = subprocess.run(["bash", "-c", f"{watch} -C 1 -W 10"], capture_output=True, text=True, timeout=30)
    finally:
        sub.publish(topic_for(device_id, Kind.CONFIG), b"", qos=1, retain=True).wait_for_publish(5)
        sub.disconnect()
        sub.loop_stop()
    (t1, summary), (t2, panic), (t3, malformed) = received
    _, window = decode_uplink(t1, summary)
    assert isinstance(window, Summary) and window.windows[0].hr_mean == 140 and window.seq == 1000
    _, event = decode_uplink(t2, panic)
    assert isinstance(event, Event) and event.type == EventType.PANIC and event.seq == 1001
    with pytest.raises(WireDecodeError) as bad:
        decode_uplink(t3, malformed)
    assert bad.value.reason == "missing"
    topic, payload = shown.stdout.strip().split(" ", 1)
    assert topic == topic_for(device_id, Kind.CONFIG) and decode(payload.encode(), Kind.CONFIG) == config
