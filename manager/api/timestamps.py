"""Datetimes as the contract carries them (google.protobuf.Timestamp); None stays unset."""
from __future__ import annotations

import datetime as dt

from google.protobuf.timestamp_pb2 import Timestamp

from virtfleet.errors import InvalidArgument


def timestamp(value: dt.datetime | None) -> Timestamp | None:
    if value is None:
        return None
    ts = Timestamp()
    ts.FromDatetime(value)
    return ts


def from_timestamp(ts: Timestamp, field: str) -> dt.datetime:
    """A request's timestamp as an aware datetime; one outside 0001-9999 (or with bad nanos) is the
    caller's INVALID_ARGUMENT, not protobuf's ValueError."""
    try:
        return ts.ToDatetime(tzinfo=dt.timezone.utc)
    except (ValueError, OverflowError) as exc:
        raise InvalidArgument(field, f"not a valid time: {exc}") from None
