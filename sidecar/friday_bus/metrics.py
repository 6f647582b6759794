"""Prometheus metrics: counters fed by the core's :class:`BusObserver` hooks, gauges from a status snapshot.

Every metric lives in the observer's own :class:`CollectorRegistry` (never the global one), so
several sidecars (or tests) in one process do not clash. Names (all prefixed ``friday_``):

Counters (``_total``), labels ``stream`` (+ ``group`` where a group is involved):

* ``friday_events_published_total{stream,kind}``: events accepted (kind ``stream`` or ``channel``);
* ``friday_events_duplicate_total{stream}``: publishes answered from the idempotency window (nothing written);
* ``friday_events_delivered_total{stream,group}``: deliveries handed to consumers (redeliveries included);
* ``friday_events_acked_total{stream,group}``, ``friday_events_nacked_total{stream,group}``;
* ``friday_events_dead_lettered_total{stream,group}``;
* ``friday_events_reclaimed_total{stream,group}``: pending entries taken over from an idle consumer;
* ``friday_events_trimmed_while_pending_total{stream,group}``: pending entries that were trimmed or deleted
  before their ack (acked away; they are lost to that group).

Histogram: ``friday_publish_duration_seconds{kind}`` (buckets from 0.1 ms).

Gauges, refreshed at scrape time from a fresh ``bus.status()`` (or the runtime's last snapshot when
Redis does not answer):

* ``friday_stream_length{stream}``, ``friday_stream_dead_letters{stream}``,
  ``friday_stream_oldest_pending_age_seconds{stream}``;
* ``friday_group_pending{stream,group}``, ``friday_group_lag{stream,group}``,
  ``friday_group_consumers{stream,group}``, ``friday_group_retry_scheduled{stream,group}``;
* ``friday_group_backlog{stream,group}``: the group's unacknowledged backlog, lag + pending
  (core/status.py ``backlog``); ``friday_stream_retention{stream}``: the stream's retention bound;
* ``friday_alert{stream,group,metric}``: 1 while the status raises that alert, else 0, for every
  alert condition of the core (``metric`` one of core/status.py ``ALERT_METRICS``; ``group`` is
  empty for a stream's own, ``dead_letters``), and ``friday_alert_threshold{stream,group,metric}``
  its threshold (FRIDAY_ALERT_*, or the stream's retention): the sidecar decides, so rules on
  ``friday_alert`` follow the settings;
* ``friday_redis_up`` (1 when the last scrape reached Redis), ``friday_status_age_seconds``.

Alert rules on these names: ``deploy/prometheus/alerts.yml``.

With FRIDAY_WORKERS > 1 (``multiprocess=True``, friday_bus/workers.py) every process (the
supervisor, whose loops dead-letter and trim, and each worker) writes its counters and histogram
to prometheus_client's per-process files in PROMETHEUS_MULTIPROC_DIR (a temporary folder of the
supervisor, set before prometheus_client is imported), and a worker's ``/metrics`` shows their
sums (``MultiProcessCollector``): whichever worker answers the scrape, the counters are the
sidecar's. The gauges above are not per-process values: the worker that answers computes them from
Redis at scrape time, as one process does (no gauge lives in the files).
"""

from __future__ import annotations

import asyncio
import logging
import os
import time
from collections.abc import Iterator
from typing import Any

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

from .core.bus import BusObserver
from .core.errors import FridayError
from .core.models import BusStatus
from .core.status import AlertCheck, alert_checks, backlog

log = logging.getLogger("friday.metrics")

PUBLISH_BUCKETS = (
    0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0,
)
STATUS_TIMEOUT_S = 5.0
CONTENT_TYPE = CONTENT_TYPE_LATEST


class _StatusCollector(Collector):
    """Yields the gauges of the snapshot set just before ``generate_latest`` runs."""

    def __init__(self) -> None:
        self.status: BusStatus | None = None
        self.checks: list[AlertCheck] = []
        self.retention: dict[str, int] = {}
        self.redis_up = 0
        self.status_age_s: float | None = None

    def collect(self) -> Iterator[GaugeMetricFamily]:
        up = GaugeMetricFamily("friday_redis_up", "1 when the sidecar reached Redis for this scrape, else 0")
        up.add_metric([], self.redis_up)
        yield up
        age = GaugeMetricFamily("friday_status_age_seconds", "Age of the status snapshot behind the stream and group gauges")
        if self.status_age_s is not None:
            age.add_metric([], self.status_age_s)
        yield age

        length = GaugeMetricFamily("friday_stream_length", "Entries in the stream", labels=["stream"])
        dead = GaugeMetricFamily("friday_stream_dead_letters", "Entries in the stream's dead-letter stream", labels=["stream"])
        oldest = GaugeMetricFamily(
            "friday_stream_oldest_pending_age_seconds", "Age of the oldest entry pending in any group of the stream", labels=["stream"]
        )
        pending = GaugeMetricFamily("friday_group_pending", "Entries delivered to the group and not yet acked", labels=["stream", "group"])
        lag = GaugeMetricFamily("friday_group_lag", "Entries not yet delivered to the group", labels=["stream", "group"])
        consumers = GaugeMetricFamily("friday_group_consumers", "Consumers known to the group", labels=["stream", "group"])
        retry = GaugeMetricFamily(
            "friday_group_retry_scheduled", "Nacked entries waiting for their backoff before redelivery", labels=["stream", "group"]
        )
        backlog_g = GaugeMetricFamily(
            "friday_group_backlog", "Entries the group has not acknowledged yet: not delivered (lag) plus pending",
            labels=["stream", "group"],
        )
        retention = GaugeMetricFamily("friday_stream_retention", "Acknowledged entries the safe trim keeps", labels=["stream"])
        sgm = ["stream", "group", "metric"]
        alert = GaugeMetricFamily(
            "friday_alert", "1 while the sidecar raises this alert (friday status), else 0; group empty for a stream's own", labels=sgm
        )
        threshold = GaugeMetricFamily("friday_alert_threshold", "Threshold of the alert condition", labels=sgm)
        st = self.status
        if st is not None:
            for s in st.streams:
                length.add_metric([s.name], s.length)
                dead.add_metric([s.name], s.dead_letter_length)
                if s.oldest_pending_age_ms is not None:
                    oldest.add_metric([s.name], s.oldest_pending_age_ms / 1000)
                for g in s.groups:
                    labels = [s.name, g.name]
                    pending.add_metric(labels, g.pending)
                    if g.lag is not None:
                        lag.add_metric(labels, g.lag)
                    consumers.add_metric(labels, len(g.consumers))
                    retry.add_metric(labels, g.retry_scheduled)
                    backlog_g.add_metric(labels, backlog(g))
        for name, bound in self.retention.items():
            retention.add_metric([name], bound)
        for c in self.checks:
            labels = [c.stream, c.group or "", c.metric]
            alert.add_metric(labels, 1 if c.firing else 0)
            threshold.add_metric(labels, c.threshold)
        yield from (length, dead, oldest, pending, lag, consumers, retry, backlog_g, retention, alert, threshold)


def _multiprocess_values() -> None:
    """Make sure the metrics created next write to PROMETHEUS_MULTIPROC_DIR (RuntimeError if it is unset: a bug)."""
    from prometheus_client import values

    if not os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        raise RuntimeError("multiprocess metrics need PROMETHEUS_MULTIPROC_DIR (set by the FRIDAY_WORKERS supervisor)")
    if not getattr(values.ValueClass, "_multiprocess", False):
        # prometheus_client picks its value class when first imported; imported before the
        # variable was set (not the case for `friday serve`), pick again: metrics made from now on use it.
        values.ValueClass = values.get_value_class()


class PrometheusObserver(BusObserver):
    """Counts what the bus does and renders the Prometheus text format.

    ``multiprocess``: the counters and the histogram go to this process's files in
    PROMETHEUS_MULTIPROC_DIR, and :attr:`registry` shows the sums over every process's files
    (plus this process's status gauges); see the module docstring.
    """

    def __init__(self, registry: CollectorRegistry | None = None, *, multiprocess: bool = False) -> None:
        self.registry = registry or CollectorRegistry(auto_describe=True)
        self.multiprocess = multiprocess
        self._last_fresh: BusStatus | None = None
        r: CollectorRegistry | None = self.registry
        if multiprocess:
            from prometheus_client.multiprocess import MultiProcessCollector

            _multiprocess_values()
            MultiProcessCollector(self.registry)
            r = None  # the values live in the files, which the collector reads: registered here they would show twice
        sg = ["stream", "group"]
        self.published_c = Counter("friday_events_published", "Events published", ["stream", "kind"], registry=r)
        self.duplicate_c = Counter(
            "friday_events_duplicate", "Publishes answered from the idempotency window (nothing written)", ["stream"], registry=r
        )
        self.delivered_c = Counter("friday_events_delivered", "Deliveries handed to consumers of a group", sg, registry=r)
        self.acked_c = Counter("friday_events_acked", "Entries acknowledged", sg, registry=r)
        self.nacked_c = Counter("friday_events_nacked", "Deliveries rejected (nack)", sg, registry=r)
        self.dead_lettered_c = Counter("friday_events_dead_lettered", "Entries moved to the dead-letter stream", sg, registry=r)
        self.reclaimed_c = Counter("friday_events_reclaimed", "Pending entries reclaimed from idle consumers", sg, registry=r)
        self.trimmed_pending_c = Counter(
            "friday_events_trimmed_while_pending", "Pending entries trimmed or deleted before their ack (acked away)", sg, registry=r
        )
        self.publish_seconds = Histogram(
            "friday_publish_duration_seconds", "Time to publish an event (batch time divided by its events)", ["kind"],
            buckets=PUBLISH_BUCKETS, registry=r,
        )
        self._status = _StatusCollector()
        self.registry.register(self._status)

    # --- BusObserver hooks (called by the core; must never raise) --------------------
    def published(self, target: str, kind: str, seconds: float, duplicate: bool, n: int = 1) -> None:
        if duplicate:
            self.duplicate_c.labels(target).inc(n)
            return
        self.published_c.labels(target, kind).inc(n)
        hist = self.publish_seconds.labels(kind)
        seconds = max(0.0, seconds)
        for _ in range(n):  # one observation per event, as before
            hist.observe(seconds)

    def delivered(self, stream: str, group: str, n: int) -> None:
        if n > 0:
            self.delivered_c.labels(stream, group).inc(n)

    def acked(self, stream: str, group: str, n: int) -> None:
        if n > 0:
            self.acked_c.labels(stream, group).inc(n)

    def nacked(self, stream: str, group: str) -> None:
        self.nacked_c.labels(stream, group).inc()

    def dead_lettered(self, stream: str, group: str, n: int) -> None:
        if n > 0:
            self.dead_lettered_c.labels(stream, group).inc(n)

    def reclaimed(self, stream: str, group: str, n: int) -> None:
        if n > 0:
            self.reclaimed_c.labels(stream, group).inc(n)

    def gone(self, stream: str, group: str, n: int) -> None:
        if n > 0:
            self.trimmed_pending_c.labels(stream, group).inc(n)

    # --- scrape ------------------------------------------------------------------------
    async def scrape(self, runtime: Any) -> bytes:
        """Refresh the gauges (fresh status, else the runtime's last one) and render the text format."""
        status: BusStatus | None = None
        up = 0
        bus = getattr(runtime, "bus", None)
        if bus is not None:
            try:
                status = await asyncio.wait_for(bus.status(), STATUS_TIMEOUT_S)
                up = 1
                self._last_fresh = status
            except (TimeoutError, FridayError) as exc:
                log.debug("metrics: fresh status unavailable (%s); using the last snapshot", type(exc).__name__)
        if status is None:
            # The newer of the monitor loop's snapshot and the last scrape's (a worker of
            # FRIDAY_WORKERS > 1 runs no monitor loop: only the latter).
            known = [st for st in (getattr(runtime, "last_status", None), self._last_fresh) if st is not None]
            status = max(known, key=lambda st: st.generated_at_ms) if known else None
        return self.render(status, up, bus)

    def render(self, status: BusStatus | None, redis_up: int, bus: Any = None) -> bytes:
        """The text format; ``bus`` (the stream configurations and settings) gives the alert conditions."""
        checks: list[AlertCheck] = []
        retention: dict[str, int] = {}
        if status is not None and bus is not None:
            for st in status.streams:
                try:
                    cfg = bus.stream_config(st.name)
                except FridayError:
                    continue  # no longer in the topology
                retention[st.name] = cfg.retention
                checks.extend(alert_checks(st, cfg, bus.settings))
        # No await between setting the snapshot and generating: concurrent scrapes cannot interleave.
        self._status.status = status
        self._status.checks = checks
        self._status.retention = retention
        self._status.redis_up = redis_up
        self._status.status_age_s = (
            max(0.0, time.time() - status.generated_at_ms / 1000) if status is not None else None
        )
        return generate_latest(self.registry)
