"""Prometheus metrics of an ingest worker: counters, batch histograms and lag.

Each :class:`IngestMetrics` has its own registry, so several workers in one
process (tests, the API process) never collide. A worker process serves its
registry on ``settings.metrics_port`` (see :func:`serve_metrics`); the API can
mount :func:`metrics_app` at ``/metrics`` for the worker it runs in-process.

Names follow the Prometheus conventions (``_total`` for counters, base units:
seconds). Lag is measured from the moment paho handed us a message to the
commit of its batch (``pisces_ingest_commit_lag_seconds``), plus the age of the
oldest message received and not yet committed (a stuck worker shows here
first).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, make_asgi_app, start_http_server

BATCH_SIZE_BUCKETS = (1, 2, 5, 10, 20, 50, 100, 200, 500, 1000, 2000, 5000)
SECONDS_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)


class IngestMetrics:
    """The metrics of one ingest worker, in a registry of its own."""

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry or CollectorRegistry(auto_describe=True)
        r = self.registry
        self.received = Counter("pisces_ingest_received", "Uplink messages received from the broker", registry=r)
        self.stored = Counter("pisces_ingest_stored", "Uplink messages stored (first delivery)", registry=r)
        self.windows = Counter("pisces_ingest_summary_windows", "Summary windows (rows) stored", registry=r)
        self.duplicates = Counter(
            "pisces_ingest_duplicates", "Messages dropped as already stored (device, seq)", registry=r
        )
        self.dead_lettered = Counter(
            "pisces_ingest_dead_lettered", "Messages kept in dead_letters", ["reason"], registry=r
        )
        self.retained_skipped = Counter(
            "pisces_ingest_retained_skipped", "Retained copies sent on (re)subscribing, acked, not stored", registry=r
        )
        self.positions_stripped = Counter(
            "pisces_ingest_positions_stripped",
            "Windows and events stored without their lat/lon: the patient has not consented to location sharing",
            registry=r,
        )
        self.db_errors = Counter("pisces_ingest_db_errors", "Batches retried after a database error", registry=r)
        self.batch_size = Histogram(
            "pisces_ingest_batch_size", "Messages per committed batch", buckets=BATCH_SIZE_BUCKETS, registry=r
        )
        self.batch_seconds = Histogram(
            "pisces_ingest_batch_seconds", "Time to store and commit one batch", buckets=SECONDS_BUCKETS, registry=r
        )
        self.commit_lag = Histogram(
            "pisces_ingest_commit_lag_seconds",
            "Time from receiving a message to the commit of its batch",
            buckets=SECONDS_BUCKETS,
            registry=r,
        )
        self.pending = Gauge("pisces_ingest_pending", "Messages received and not yet committed", registry=r)
        self.oldest_pending = Gauge(
            "pisces_ingest_oldest_pending_seconds", "Age of the oldest message not yet committed", registry=r
        )

    def watch_oldest(self, oldest: Callable[[], float | None]) -> None:
        """Report ``now - oldest()`` (monotonic seconds) as the oldest pending age; 0 when none."""

        def age() -> float:
            started = oldest()
            return 0.0 if started is None else max(0.0, time.monotonic() - started)

        self.oldest_pending.set_function(age)

    def value(self, name: str, labels: dict[str, str] | None = None) -> float:
        """The current value of a sample, e.g. ``value("pisces_ingest_stored_total")`` (0 if absent)."""
        found = self.registry.get_sample_value(name, labels or {})
        return float(found) if found is not None else 0.0


def serve_metrics(metrics: IngestMetrics, host: str, port: int) -> tuple[Any, threading.Thread]:
    """Serve ``/metrics`` over HTTP on host:port in a daemon thread; returns (server, thread)."""
    server, thread = start_http_server(port, addr=host, registry=metrics.registry)
    return server, thread


def metrics_app(metrics: IngestMetrics) -> Any:
    """An ASGI app serving the registry (mount it at ``/metrics`` in the API)."""
    return make_asgi_app(registry=metrics.registry)
