"""`virtfleet events`: the audit trail — who changed what, what was refused, what the manager did itself."""
from __future__ import annotations

import datetime as dt
import json
import re
import sys
from typing import Any

import click
import grpc
from google.protobuf.timestamp_pb2 import Timestamp

from virtfleet.v1 import events_pb2, events_pb2_grpc

from .output import OUTPUT_OPTION, print_json

_AGO = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([smhdw])\s*$")
_UNIT_S = {"s": 1, "m": 60, "h": 3600, "d": 86_400, "w": 7 * 86_400}


# -- parsing and rendering (pure) ----------------------------------------------------------------


def parse_since(text: str, now: dt.datetime) -> dt.datetime:
    """`1h`, `30m`, `2d`, `45s`, `1w` before `now`, or an ISO 8601 time (without a zone: the local one)."""
    m = _AGO.match(text)
    if m:
        return now - dt.timedelta(seconds=float(m.group(1)) * _UNIT_S[m.group(2)])
    try:
        when = dt.datetime.fromisoformat(text.strip())
    except ValueError:
        raise click.BadParameter(f"{text!r}: expected a duration like 30m, 1h, 2d or an ISO time like "
                                 "2024-05-01T12:00", param_hint="--since") from None
    return when if when.tzinfo is not None else when.astimezone()


def parse_object(text: str) -> str:
    kind, _, name = text.partition("/")
    if not kind or "/" in name:
        raise click.BadParameter(f"{text!r}: expected KIND/NAME or KIND, like vm/web1 or host",
                                 param_hint="--object")
    return text


def event_dict(e: events_pb2.Event) -> dict[str, Any]:
    """For scripts: numbers as numbers, the summary as an object, the time as ISO 8601 UTC."""
    try:
        summary = json.loads(e.summary_json) if e.summary_json else {}
    except ValueError:
        summary = {"unreadable": e.summary_json}
    return {"id": e.id, "at": e.at.ToDatetime(tzinfo=dt.timezone.utc).isoformat(), "identity": e.identity,
            "identity_kind": e.identity_kind, "role": e.role or None, "peer": e.peer, "rpc": e.rpc,
            "object_kind": e.object_kind, "object_name": e.object_name, "summary": summary, "code": e.code,
            "message": e.message, "duration_ms": e.duration_ms, "request_id": e.request_id}


def short_rpc(rpc: str) -> str:
    """"/virtfleet.v1.VmService/StopVirtualMachine" -> "StopVirtualMachine"; system actions stay as they are."""
    return rpc.rsplit("/", 1)[-1] if rpc.startswith("/") else rpc


def event_row(e: events_pb2.Event) -> list[str]:
    at = e.at.ToDatetime(tzinfo=dt.timezone.utc).astimezone().strftime("%Y-%m-%d %H:%M:%S")
    who = f"{e.identity or '-'} ({e.identity_kind}{', ' + e.role if e.role else ''})"
    obj = f"{e.object_kind}/{e.object_name}" if e.object_name else e.object_kind
    return [at, who, short_rpc(e.rpc), obj or "-", e.code, f"{e.duration_ms:.1f}", e.message]


def event_line(e: events_pb2.Event) -> str:
    at, who, action, obj, code, ms, message = event_row(e)
    return f"{at}  {who}  {action}  {obj}  {code}  {ms} ms" + (f"  — {message}" if message else "")


# -- the command -----------------------------------------------------------------------------------


@click.command("events")
@click.option("--since", default=None, help="only events after this: 30m, 1h, 2d, 1w, or an ISO time")
@click.option("--object", "object_", default=None, help="only about this object: KIND/NAME (vm/web1) or KIND")
@click.option("--identity", default=None, help="only by this identity (user, admin or host name; manager)")
@click.option("--limit", type=click.IntRange(1, 10_000), default=100, show_default=True,
              help="the newest this many (with --follow: of the past ones shown first)")
@click.option("--follow", "-f", is_flag=True, help="then keep showing new events as they happen (Ctrl-C ends)")
@OUTPUT_OPTION
@click.pass_context
def events_command(ctx, since, object_, identity, limit, follow, output):
    """The audit trail: every change made through the fleet API, every refused call, and system events."""
    f = events_pb2.EventFilter(object=parse_object(object_) if object_ else "", identity=identity or "",
                               limit=limit)
    if since:
        ts = Timestamp()
        ts.FromDatetime(parse_since(since, dt.datetime.now(dt.timezone.utc)).astimezone(dt.timezone.utc))
        f.since.CopyFrom(ts)
    stub: events_pb2_grpc.EventServiceStub = ctx.obj.events()
    if follow:
        _follow(stub, f, output)
        return
    reply = stub.ListEvents(events_pb2.ListEventsRequest(filter=f), timeout=60)
    if output == "json":
        print_json([event_dict(e) for e in reply.events])
        return
    if not reply.events:
        click.echo("no events")
        return
    for e in reply.events:   # one line each, as a log reads (and greps), the same as --follow
        click.echo(event_line(e))


def _follow(stub: events_pb2_grpc.EventServiceStub, f: events_pb2.EventFilter, output: str) -> None:
    """One line per event (JSON Lines with -o json), flushed as each arrives."""
    stream = stub.FollowEvents(events_pb2.FollowEventsRequest(filter=f, past=True))
    try:
        for e in stream:
            click.echo(json.dumps(event_dict(e), sort_keys=True) if output == "json" else event_line(e))
            sys.stdout.flush()
    except KeyboardInterrupt:
        stream.cancel()
    except grpc.RpcError as err:
        if err.code() != grpc.StatusCode.CANCELLED:
            raise
