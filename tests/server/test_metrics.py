"""Prometheus /metrics of a running ingest worker, scraped over HTTP."""

from __future__ import annotations

import urllib.request

import pytest
from prometheus_client.parser import text_string_to_metric_families

from server.embedded import free_port
from server.ingest import Ingestor
from server.settings import ServerSettings
from tests.server.helpers import forget_session, publish, wait_for
from tests.server.test_ingest import summary
from wire import Kind, topic_for

pytestmark = [pytest.mark.db, pytest.mark.mqtt]


def scrape(port: int) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as response:
        text = response.read().decode()
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


def test_counters_histograms_and_lag_are_exported(
    settings: ServerSettings, patient_id: int, mqtt_url: str, device_id: str
) -> None:
    port = free_port()
    worker = Ingestor(settings.model_copy(update={"metrics_port": port, "mqtt_protocol": "5"}))
    worker.start()
    try:
        one = summary(device_id, 1, [70, 71, 72])
        publish(mqtt_url, [one, summary(device_id, 2, [80]), one, (topic_for(device_id, Kind.EVENT), b"nope")])
        # The shared test broker also hands us other tests' retained status messages: count ours.
        wait_for(lambda: worker.counters.stored == 2 and worker.counters.duplicates == 1
                 and worker.metrics.value("pisces_ingest_dead_lettered_total", {"reason": "not_json"}) == 1
                 and worker.metrics.value("pisces_ingest_pending") == 0, what="our four messages committed")  # fmt: skip
        got = scrape(port)
    finally:
        worker.stop()
        forget_session(mqtt_url, settings.mqtt_client_id)
    received = got[("pisces_ingest_received_total", ())]
    assert received == worker.counters.received >= 4
    assert got[("pisces_ingest_stored_total", ())] == 2
    assert got[("pisces_ingest_summary_windows_total", ())] == 4
    assert got[("pisces_ingest_duplicates_total", ())] == 1
    assert got[("pisces_ingest_dead_lettered_total", (("reason", "not_json"),))] == 1
    assert got[("pisces_ingest_batch_size_sum", ())] == received
    assert got[("pisces_ingest_batch_seconds_count", ())] == got[("pisces_ingest_batch_size_count", ())] >= 1
    assert got[("pisces_ingest_commit_lag_seconds_count", ())] == received
    assert got[("pisces_ingest_pending", ())] == 0
    assert got[("pisces_ingest_oldest_pending_seconds", ())] == 0
