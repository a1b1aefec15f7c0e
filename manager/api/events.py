"""EventService: the audit trail, listed and followed.

A follower's stream wakes at least every second, even with nothing new, to
check that its client is still connected and still allowed: a caller whose
certificate or role was revoked loses an open stream within seconds, not at
its next call (`manager.auth.context.check_still_allowed`).
"""
from __future__ import annotations

import json
from collections.abc import Iterator

from virtfleet.errors import InvalidArgument
from virtfleet.rpc import translating_errors
from virtfleet.v1 import events_pb2, events_pb2_grpc

from ..auth.context import check_still_allowed
from ..service.events import LIST_MAX, EventService
from ..store.events import EventFilter, EventRecord
from .timestamps import from_timestamp, timestamp

WAKE_S = 1.0


def event_filter(f: events_pb2.EventFilter) -> EventFilter:
    kind, _, name = f.object.partition("/")
    if f.object and (not kind or "/" in name):
        raise InvalidArgument("filter.object", f"must be KIND/NAME or KIND (like vm/web1 or host), got {f.object!r}")
    if f.limit > LIST_MAX:
        raise InvalidArgument("filter.limit", f"must be at most {LIST_MAX}, got {f.limit}")
    since = from_timestamp(f.since, "filter.since") if f.HasField("since") else None
    return EventFilter(since=since, object_kind=kind, object_name=name, identity=f.identity, limit=f.limit or 100)


def event_message(r: EventRecord) -> events_pb2.Event:
    return events_pb2.Event(
        id=r.id or 0, at=timestamp(r.at), identity=r.identity_name, identity_kind=r.identity_kind, role=r.role or "",
        peer=r.peer, rpc=r.rpc, object_kind=r.object_kind, object_name=r.object_name,
        summary_json=json.dumps(r.summary, sort_keys=True, default=str), code=r.code, message=r.message,
        duration_ms=r.duration_ms, request_id=r.request_id)


class EventServicer(events_pb2_grpc.EventServiceServicer):
    def __init__(self, events: EventService) -> None:
        self._events = events

    @translating_errors
    def ListEvents(self, request, context):
        return events_pb2.ListEventsResponse(events=[event_message(r) for r in
                                                     self._events.list(event_filter(request.filter))])

    @translating_errors
    def FollowEvents(self, request, context) -> Iterator[events_pb2.Event]:
        check_still_allowed()
        for record in self._events.follow(event_filter(request.filter), past=request.past,
                                          keep_going=context.is_active, wake_s=WAKE_S):
            check_still_allowed()   # at least every WAKE_S: a revoked caller's stream ends
            if record is not None:
                yield event_message(record)
