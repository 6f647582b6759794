"""W3C trace context for a publish: given explicitly, or the current OpenTelemetry span's.

``opentelemetry`` (the API package) is optional: without it only an explicit ``traceparent``
is sent, and the client needs nothing beyond grpcio and protobuf. The sidecar checks the
values (a malformed one is InvalidArgument, field ``traceparent``)."""

from __future__ import annotations

from typing import Any

try:  # optional: the client works with grpcio and protobuf only
    from opentelemetry import trace as _otel_trace
except ImportError:  # pragma: no cover - depends on what is installed
    _otel_trace = None

__all__ = ["current_trace_context", "trace_metadata"]


def current_trace_context() -> tuple[str, str | None] | None:
    """(traceparent, tracestate or None) of the current OpenTelemetry span, or None when
    ``opentelemetry`` is not importable or no valid span is current."""
    if _otel_trace is None:
        return None
    ctx: Any = _otel_trace.get_current_span().get_span_context()
    if not ctx.is_valid:
        return None
    traceparent = f"00-{ctx.trace_id:032x}-{ctx.span_id:016x}-{int(ctx.trace_flags):02x}"
    state = ctx.trace_state.to_header() if ctx.trace_state else ""
    return traceparent, state or None


def trace_metadata(traceparent: str | None = None, tracestate: str | None = None) -> tuple[tuple[str, str], ...]:
    """The gRPC call metadata carrying the trace context of a publish: the explicit values, else
    the current OpenTelemetry span's, else none (``()``)."""
    if traceparent is None:  # a tracestate alone means nothing (W3C): the current context, or none
        current = current_trace_context()
        if current is None:
            return ()
        traceparent, tracestate = current
    if tracestate is None:
        return (("traceparent", traceparent),)
    return (("traceparent", traceparent), ("tracestate", tracestate))
