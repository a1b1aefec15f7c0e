"""Tables for people, JSON for scripts."""
from __future__ import annotations

import json
import sys
from typing import Any, Iterable, Sequence

import click
from google.protobuf.json_format import MessageToDict
from google.protobuf.message import Message
from google.protobuf.timestamp_pb2 import Timestamp
from rich.console import Console
from rich.table import Table

OUTPUT_OPTION = click.option(
    "-o", "--output", type=click.Choice(["table", "json"]), default="table", show_default=True,
    help="table for people, json for scripts",
)


def as_dict(msg: Message) -> dict[str, Any]:
    return MessageToDict(msg, preserving_proto_field_name=True, always_print_fields_with_no_presence=True)


def print_json(data: Any) -> None:
    json.dump(data, sys.stdout, indent=2, sort_keys=True, default=str)
    sys.stdout.write("\n")


# Piped output (a log, grep, a pager) has no terminal width: rich would squeeze tables into 80 columns and cut
# MACs and names with "…". Lines for a file are kept whole instead; a terminal still gets its own width.
PIPED_WIDTH = 250


def console() -> Console:
    return Console() if sys.stdout.isatty() else Console(width=PIPED_WIDTH)


def print_table(columns: Sequence[str], rows: Iterable[Sequence[Any]], title: str | None = None) -> None:
    table = Table(title=title, show_edge=False, header_style="bold")
    for c in columns:
        table.add_column(c)
    for row in rows:
        table.add_row(*("" if v is None else str(v) for v in row))
    console().print(table)


def print_fields(pairs: Sequence[tuple[str, Any]]) -> None:
    width = max(len(k) for k, _ in pairs)
    for k, v in pairs:
        click.echo(f"{k + ':':<{width + 1}} {'' if v is None else v}")


def when(ts: Timestamp) -> str:
    """A contract timestamp as admins read it; an unset one is "never"."""
    if not ts.seconds and not ts.nanos:
        return "never"
    return ts.ToDatetime().strftime("%Y-%m-%d %H:%M:%S UTC")
