"""An OTLP/HTTP trace receiver for tests: an HTTP server on a free loopback port taking
``POST /v1/traces`` (protobuf), decoded with opentelemetry-proto. Every span of every export is
kept as a dict. Used by tests/test_tracing_otlp.py and tests/e2e_n8n (one trace from an agent
through the sidecar to an n8n execution)."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from opentelemetry.proto.collector.trace.v1 import trace_service_pb2

INTERNAL, SERVER, CLIENT, PRODUCER, CONSUMER = 1, 2, 3, 4, 5  # opentelemetry.proto.trace.v1.Span.SpanKind
KIND_NAMES = {0: "UNSPECIFIED", INTERNAL: "INTERNAL", SERVER: "SERVER", CLIENT: "CLIENT", PRODUCER: "PRODUCER",
              CONSUMER: "CONSUMER"}


class Receiver:
    """Spans as dicts: name, kind, trace_id, span_id, parent ("" for a root), status, links
    [(trace_id, span_id)], attrs, service (the resource's service.name), start/end (unix ns)."""

    def __init__(self) -> None:
        self.spans: list[dict[str, Any]] = []
        self.resources: list[dict[str, Any]] = []
        self.lock = threading.Lock()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                ok = self.path == "/v1/traces" and self.headers.get("Content-Type") == "application/x-protobuf"
                if ok:
                    receiver.take(trace_service_pb2.ExportTraceServiceRequest.FromString(body))
                self.send_response(200 if ok else 404)
                out = trace_service_pb2.ExportTraceServiceResponse().SerializeToString()
                self.send_header("Content-Type", "application/x-protobuf")
                self.send_header("Content-Length", str(len(out)))
                self.end_headers()
                self.wfile.write(out)

            def log_message(self, *args: Any) -> None:
                pass

        # Port 0: the kernel picks a free port at bind time (no window for another process to take it).
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self.server.server_address[1]
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    @property
    def endpoint(self) -> str:
        """The value for OTEL_EXPORTER_OTLP_ENDPOINT (the exporter appends /v1/traces)."""
        return f"http://127.0.0.1:{self.port}"

    @staticmethod
    def _value(v: Any) -> Any:
        return getattr(v, v.WhichOneof("value")) if v.WhichOneof("value") else None

    def take(self, req: Any) -> None:
        with self.lock:
            for rs in req.resource_spans:
                resource = {a.key: self._value(a.value) for a in rs.resource.attributes}
                self.resources.append(resource)
                for ss in rs.scope_spans:
                    for s in ss.spans:
                        self.spans.append({
                            "name": s.name, "kind": s.kind, "trace_id": s.trace_id.hex(), "span_id": s.span_id.hex(),
                            "parent": s.parent_span_id.hex(), "status": s.status.code,
                            "links": [(link.trace_id.hex(), link.span_id.hex()) for link in s.links],
                            "attrs": {a.key: self._value(a.value) for a in s.attributes},
                            "service": resource.get("service.name"),
                            "start": s.start_time_unix_nano, "end": s.end_time_unix_nano,
                        })

    def wait(self, what: str, pred: Callable[[dict[str, Any]], bool], timeout: float = 20,
             count: int = 1) -> list[dict[str, Any]]:
        """The spans matching ``pred``, once there are at least ``count`` (AssertionError after
        ``timeout``). Spans of one trace may come in separate exports: wait for all you count."""
        deadline = time.monotonic() + timeout
        while True:
            with self.lock:
                found = [s for s in self.spans if pred(s)]
            if len(found) >= count:
                return found
            if time.monotonic() > deadline:
                raise AssertionError(f"{len(found)} of {count} span(s) {what} in {len(self.spans)}: {[s['name'] for s in self.spans]}")
            time.sleep(0.05)

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
