"""OpenTelemetry spans of the bus, when tracing is on (README "Tracing").

Off by default, and then nothing here runs: :func:`from_env` returns ``None``, the core keeps
``ctx.tracer = None`` and each hook is one ``is not None`` test per call (no per-event work).

On when all of these hold (the standard ``OTEL_*`` variables, read once per process):

- ``opentelemetry-sdk`` and the OTLP/HTTP exporter are importable (``pip install '.[otel]'``);
- ``OTEL_SDK_DISABLED`` is not ``true``;
- ``OTEL_TRACES_EXPORTER`` is ``otlp`` or ``console``, or (unset) ``OTEL_EXPORTER_OTLP_ENDPOINT`` /
  ``OTEL_EXPORTER_OTLP_TRACES_ENDPOINT`` is set. ``OTEL_TRACES_EXPORTER=none`` is off.

Spans go over OTLP/HTTP protobuf (``OTEL_EXPORTER_OTLP_PROTOCOL=http/protobuf``, the default; ``grpc``
when ``opentelemetry-exporter-otlp-proto-grpc`` is installed), batched (``OTEL_BSP_*``), with the
resource of ``OTEL_SERVICE_NAME`` (default ``friday-sidecar``) and ``OTEL_RESOURCE_ATTRIBUTES``.

Spans (attributes after OpenTelemetry's messaging conventions: ``messaging.system=redis``,
``messaging.destination.name``, ``messaging.consumer.group.name``, ``messaging.message.id``,
``messaging.operation.type``/``.name``; ``friday.delivery_count``):

- ``publish <stream>``, PRODUCER, child of the publisher's ``traceparent`` (a new trace without
  one); its context is what the event stores, so consumers continue from it;
- ``deliver <stream>``, CONSUMER, child of (and linked to) the stored context, one per delivery;
- ``ack <stream>`` / ``nack <stream>``, CLIENT, children of the delivery's span when this process
  delivered it (a bounded memory of recent deliveries), else of nothing;
- ``dead_letter <stream>``, PRODUCER, child of the nack that dead-lettered the entry.
"""

from __future__ import annotations

import dataclasses
import logging
import os
from collections import OrderedDict
from collections.abc import Mapping, Sequence
from typing import Any

from .errors import ConfigError
from .models import Delivery, EventMeta

log = logging.getLogger("friday.tracing")

SERVICE_NAME = "friday-sidecar"
DELIVERY_MEMORY = 10_000
"""Deliveries whose span context is remembered for the ack / nack spans (the oldest are forgotten)."""

_TRUE = {"true", "1", "yes", "on"}


def requested(env: Mapping[str, str]) -> bool:
    """Whether the ``OTEL_*`` variables ask for traces (the libraries aside)."""
    if env.get("OTEL_SDK_DISABLED", "").strip().lower() in _TRUE:
        return False
    exporter = env.get("OTEL_TRACES_EXPORTER", "").strip().lower()
    if exporter:
        return exporter != "none"
    return bool(env.get("OTEL_EXPORTER_OTLP_ENDPOINT") or env.get("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT"))


_PROVIDER: Any = None  # one TracerProvider per process, built on first use


def _exporter(env: Mapping[str, str]) -> Any:
    kind = env.get("OTEL_TRACES_EXPORTER", "otlp").strip().lower() or "otlp"
    if kind == "console":
        from opentelemetry.sdk.trace.export import ConsoleSpanExporter

        return ConsoleSpanExporter()
    if kind != "otlp":
        raise ConfigError(f"OTEL_TRACES_EXPORTER={kind!r} is not supported by the sidecar: use otlp, console or none")
    protocol = (env.get("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL") or env.get("OTEL_EXPORTER_OTLP_PROTOCOL") or "http/protobuf").strip()
    if protocol == "grpc":
        try:
            from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter as GrpcExporter
        except ImportError as exc:
            raise ConfigError(
                "OTEL_EXPORTER_OTLP_PROTOCOL=grpc needs opentelemetry-exporter-otlp-proto-grpc; install it, or use "
                "http/protobuf (the otel extra's exporter, port 4318)"
            ) from exc
        return GrpcExporter()
    if protocol != "http/protobuf":
        raise ConfigError(f"OTEL_EXPORTER_OTLP_PROTOCOL={protocol!r} is not supported: use http/protobuf or grpc")
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

    return OTLPSpanExporter()


def _provider(env: Mapping[str, str]) -> Any:
    global _PROVIDER
    if _PROVIDER is None:
        from opentelemetry.sdk.resources import Resource
        from opentelemetry.sdk.trace import TracerProvider
        from opentelemetry.sdk.trace.export import BatchSpanProcessor

        attrs = {} if env.get("OTEL_SERVICE_NAME") else {"service.name": SERVICE_NAME}
        provider = TracerProvider(resource=Resource.create(attrs))
        provider.add_span_processor(BatchSpanProcessor(_exporter(env)))
        _PROVIDER = provider
        log.info("tracing on: spans exported (%s)", env.get("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT")
                 or env.get("OTEL_EXPORTER_OTLP_ENDPOINT") or env.get("OTEL_TRACES_EXPORTER", "otlp"))
    return _PROVIDER


def from_env(env: Mapping[str, str] | None = None) -> BusTracer | None:
    """The tracer of the bus, or None (tracing off: the default)."""
    env = os.environ if env is None else env
    if not requested(env):
        return None
    try:
        import opentelemetry.sdk.trace  # noqa: F401
        from opentelemetry.exporter.otlp.proto.http import trace_exporter  # noqa: F401
    except ImportError:
        log.warning("OTEL_* variables ask for traces but opentelemetry-sdk / the OTLP exporter are not installed: "
                    "tracing off (pip install 'friday-eventbus[otel]')")
        return None
    return BusTracer(_provider(env))


def flush(timeout_ms: int = 5000) -> None:
    """Export what is buffered (at shutdown)."""
    if _PROVIDER is not None:
        _PROVIDER.force_flush(timeout_ms)


def traceparent_of(span_context: Any) -> str:
    return f"00-{span_context.trace_id:032x}-{span_context.span_id:016x}-{int(span_context.trace_flags):02x}"


class BusTracer:
    """The spans of the bus (built only when tracing is on)."""

    def __init__(self, provider: Any) -> None:
        from opentelemetry import trace

        self._trace = trace
        self._kinds = trace.SpanKind
        self._error = trace.Status(trace.StatusCode.ERROR)
        self.tracer = provider.get_tracer("friday_bus")
        self._deliveries: OrderedDict[tuple[str, str, str], Any] = OrderedDict()

    # -------------------------------------------------------------- helpers
    def _extract(self, traceparent: str | None, tracestate: str | None) -> Any:
        """The context of a stored traceparent (checked at publish: codec.validate_trace_context),
        split rather than parsed again; None without one."""
        if traceparent is None:
            return None
        trace = self._trace
        try:
            _, trace_id, span_id, flags = traceparent.split("-", 3)
            span_context = trace.SpanContext(
                int(trace_id, 16), int(span_id[:16], 16), is_remote=True, trace_flags=trace.TraceFlags(int(flags[:2], 16)),
                trace_state=trace.TraceState.from_header([tracestate]) if tracestate else None,
            )
        except ValueError:  # a field edited by hand: no parent rather than a failed delivery
            return None
        return trace.set_span_in_context(trace.NonRecordingSpan(span_context))

    @staticmethod
    def _base(stream: str, operation: str, kind: str) -> dict[str, Any]:
        return {
            "messaging.system": "redis",
            "messaging.destination.name": stream,
            "messaging.operation.type": kind,
            "messaging.operation.name": operation,
        }

    @classmethod
    def _entry(cls, stream: str, operation: str, kind: str, group: str, entry_id: str) -> dict[str, Any]:
        attrs = cls._base(stream, operation, kind)
        attrs["messaging.consumer.group.name"] = group
        attrs["messaging.message.id"] = entry_id
        return attrs

    def _remember(self, key: tuple[str, str, str], span_context: Any) -> None:
        memory = self._deliveries
        memory[key] = span_context
        memory.move_to_end(key)
        while len(memory) > DELIVERY_MEMORY:
            memory.popitem(last=False)

    def _settle_parent(self, stream: str, group: str, entry_id: str) -> Any:
        span_context = self._deliveries.pop((stream, group, entry_id), None)
        if span_context is None:
            return None
        return self._trace.set_span_in_context(self._trace.NonRecordingSpan(span_context))

    # -------------------------------------------------------------- publish
    def publish_started(self, target: str, kind: str, meta: EventMeta) -> tuple[Any, EventMeta]:
        """Start the publish span of one event (child of the publisher's traceparent); the event's
        metadata now carries the span's context (what the entry stores)."""
        attrs = self._base(target, "publish", "publish")
        attrs["friday.kind"] = kind
        if meta.event_id is not None:
            attrs["friday.event_id"] = meta.event_id
        if meta.correlation_id is not None:
            attrs["messaging.message.conversation_id"] = meta.correlation_id
        span = self.tracer.start_span(f"publish {target}", context=self._extract(meta.traceparent, meta.tracestate),
                                      kind=self._kinds.PRODUCER, attributes=attrs)
        sc = span.get_span_context()
        state = sc.trace_state.to_header() if sc.trace_state else None
        return span, dataclasses.replace(meta, traceparent=traceparent_of(sc), tracestate=state or None)

    def publish_ended(self, spans: Sequence[Any], results: Sequence[Any]) -> None:
        for span, result in zip(spans, results, strict=True):
            if result.entry_id is not None:
                span.set_attribute("messaging.message.id", result.entry_id)
            if result.duplicate:
                span.set_attribute("friday.duplicate", True)
            if result.receivers is not None:
                span.set_attribute("friday.receivers", result.receivers)
            span.end()

    def publish_failed(self, spans: Sequence[Any], exc: BaseException) -> None:
        for span in spans:
            span.set_status(self._error)
            span.record_exception(exc)
            span.end()

    # -------------------------------------------------------------- consume
    def delivered(self, deliveries: Sequence[Delivery]) -> None:
        """One ``deliver`` span per delivery, child of (and linked to) the context the entry stores."""
        for d in deliveries:
            attrs = self._entry(d.stream, "deliver", "receive", d.group, d.entry_id)
            attrs["friday.delivery_count"] = d.delivery_count
            attrs["friday.consumer"] = d.consumer
            parent = self._extract(d.meta.traceparent, d.meta.tracestate)
            links = None
            if parent is not None:
                links = [self._trace.Link(self._trace.get_current_span(parent).get_span_context())]
            span = self.tracer.start_span(f"deliver {d.stream}", context=parent, kind=self._kinds.CONSUMER,
                                          attributes=attrs, links=links)
            span.end()
            self._remember((d.stream, d.group, d.entry_id), span.get_span_context())

    def acked(self, stream: str, group: str, entry_ids: Sequence[str], acked: int) -> None:
        for entry_id in entry_ids:
            attrs = self._entry(stream, "ack", "settle", group, entry_id)
            span = self.tracer.start_span(f"ack {stream}", context=self._settle_parent(stream, group, entry_id),
                                          kind=self._kinds.CLIENT, attributes=attrs)
            if len(entry_ids) == 1:
                span.set_attribute("friday.acked", bool(acked))
            span.end()

    def nacked(self, stream: str, group: str, entry_id: str, outcome: str, dead_letter_id: str | None) -> None:
        attrs = self._entry(stream, "nack", "settle", group, entry_id)
        attrs["friday.nack.outcome"] = outcome
        span = self.tracer.start_span(f"nack {stream}", context=self._settle_parent(stream, group, entry_id),
                                      kind=self._kinds.CLIENT, attributes=attrs)
        if dead_letter_id is not None:
            dl = self._entry(stream, "dead_letter", "publish", group, entry_id)
            dl["friday.dead_letter_id"] = dead_letter_id
            child = self.tracer.start_span(f"dead_letter {stream}", context=self._trace.set_span_in_context(span),
                                           kind=self._kinds.PRODUCER, attributes=dl)
            child.end()
        span.end()
