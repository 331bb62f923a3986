"""docs/protocol.md must agree with the code: every JSON example in it decodes as documented."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from wire import Kind, Topic, decode, encode

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
