"""A real OTLP/gRPC trace receiver: the OpenTelemetry protocol's own service definition
(opentelemetry-proto) served by grpcio. It keeps every span it is sent, for the checks."""

import threading
from concurrent import futures

import grpc
from opentelemetry.proto.collector.trace.v1 import trace_service_pb2, trace_service_pb2_grpc


def attributes(key_values):
    return {kv.key: getattr(kv.value, kv.value.WhichOneof("value")) for kv in key_values if kv.value.WhichOneof("value")}


class Receiver(trace_service_pb2_grpc.TraceServiceServicer):
    def __init__(self):
        self.spans = []
        self._lock = threading.Lock()
        self._server = grpc.server(futures.ThreadPoolExecutor(max_workers=4))
        trace_service_pb2_grpc.add_TraceServiceServicer_to_server(self, self._server)
        self.port = self._server.add_insecure_port("127.0.0.1:0")
        self._server.start()

    @property
    def endpoint(self):
        return f"http://127.0.0.1:{self.port}"

    def Export(self, request, context):  # noqa: N802 (the gRPC method's name)
        received = []
        for resource_spans in request.resource_spans:
            resource = attributes(resource_spans.resource.attributes)
            for scope_spans in resource_spans.scope_spans:
                for span in scope_spans.spans:
                    received.append({
                        "service": resource.get("service.name"),
                        "trace_id": span.trace_id.hex(),
                        "span_id": span.span_id.hex(),
                        "parent_span_id": span.parent_span_id.hex(),
                        "name": span.name,
                        "server": span.kind == span.SPAN_KIND_SERVER,
                        "attributes": attributes(span.attributes),
                        "error": span.status.code == span.status.STATUS_CODE_ERROR,
                        "links": [(link.trace_id.hex(), link.span_id.hex()) for link in span.links],
                    })
        with self._lock:
            self.spans.extend(received)
        return trace_service_pb2.ExportTraceServiceResponse()

    def snapshot(self):
        with self._lock:
            return list(self.spans)

    def stop(self):
        self._server.stop(grace=1)
