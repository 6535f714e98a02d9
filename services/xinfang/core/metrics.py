"""Prometheus metrics every service shares, and the exposition server.

Label rules (cardinality is bounded and documented in README "Metrics"):
``service``, ``district`` (tens to hundreds), ``clock`` (9 kinds), ``stage``,
``outcome``, ``payload`` (event types), ``partition`` (fixed count). Never a
case id, a person, or free text.
"""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram, start_http_server

__all__ = [
    "CONSUMER_EVENTS",
    "CONSUMER_LAG",
    "CONSUMER_LAST_OFFSET",
    "CONSUMER_LAST_PROCESSED",
    "DEAD_LETTERS",
    "GRPC_REQUESTS",
    "OUTBOX_PUBLISHED",
    "serve_metrics",
]

CONSUMER_EVENTS = Counter(
    "xinfang_consumer_events_total",
    "Case events handled by a consumer, by payload type and outcome",
    ["service", "payload", "outcome"],
)
CONSUMER_LAST_OFFSET = Gauge(
    "xinfang_consumer_last_offset",
    "Offset of the last case event a consumer finished, per partition",
    ["service", "partition"],
)
CONSUMER_LAST_PROCESSED = Gauge(
    "xinfang_consumer_last_processed_timestamp_seconds",
    "Unix time a consumer last finished an event (stalls show as age)",
    ["service"],
)
DEAD_LETTERS = Counter(
    "xinfang_dead_letters_total",
    "Messages a consumer could not handle and sent to the dead-letter topic",
    ["service"],
)
CONSUMER_LAG = Histogram(
    "xinfang_consumer_lag_seconds",
    "Time from an event being recorded to a consumer having applied it",
    ["service"],
    buckets=(0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300),
)
OUTBOX_PUBLISHED = Counter(
    "xinfang_outbox_published_total",
    "Events the outbox relay published to Kafka",
    ["service"],
)
GRPC_REQUESTS = Counter(
    "xinfang_grpc_requests_total",
    "gRPC requests by method and status code",
    ["service", "method", "code"],
)
GRPC_LATENCY = Histogram(
    "xinfang_grpc_request_duration_seconds",
    "gRPC request latency by method",
    ["service", "method"],
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5),
)


def serve_metrics(port: int, host: str = "127.0.0.1") -> None:
    """Expose /metrics on a background thread (prometheus_client's own server)."""
    start_http_server(port, addr=host)
