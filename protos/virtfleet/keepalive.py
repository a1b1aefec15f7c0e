"""HTTP/2 keepalive both ends of the manager↔agent channel must agree on.

The manager pings idle agent connections so a dead host is noticed in
seconds, not at the next call. A gRPC server refuses pings more frequent than
its own minimum (5 minutes by default) with GOAWAY "too_many_pings", which
tears the monitor's stream down — so the agent states what it accepts here,
next to what the manager sends.
"""
from __future__ import annotations

PING_INTERVAL_MS = 10_000

CLIENT_OPTIONS: list[tuple[str, int]] = [
    ("grpc.keepalive_time_ms", PING_INTERVAL_MS),
    ("grpc.keepalive_timeout_ms", 5_000),
    ("grpc.keepalive_permit_without_calls", 1),
]

SERVER_OPTIONS: list[tuple[str, int]] = [
    ("grpc.keepalive_permit_without_calls", 1),
    ("grpc.http2.min_ping_interval_without_data_ms", PING_INTERVAL_MS // 2),
    ("grpc.http2.max_ping_strikes", 0),
]
