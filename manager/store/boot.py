"""Boot source and domain type columns ⇄ `BootSource`, `DomainType`: one mapping for vms, templates, snapshots.

The three tables carry the same six columns (db/012_boot_source.sql); each record type
ends with `boot` and `domain_type`, filled by `record_row` from the last six columns
of its SELECT.
"""
from __future__ import annotations

from typing import Any, Callable, Sequence, TypeVar

from psycopg.rows import BaseRowFactory, args_row

from ..domain.boot import BootSource, DomainType

COLUMNS = ("boot_kernel", "boot_initrd", "boot_cmdline", "boot_disk", "boot_test_guest", "domain_type")
R = TypeVar("R")


def select(alias: str) -> str:
    """The columns for a SELECT, in `record_row`'s order."""
    return ", ".join(f"{alias}.{c}" for c in COLUMNS)


def values(boot: BootSource, domain_type: DomainType) -> tuple:
    """Values for COLUMNS, in order."""
    return (boot.kernel, boot.initrd, boot.cmdline, boot.disk, boot.test_guest, domain_type.value)


def from_columns(row: Sequence[Any]) -> tuple[BootSource, DomainType]:
    kernel, initrd, cmdline, disk, test_guest, domain_type = row
    return BootSource(kernel, initrd, cmdline, disk, bool(test_guest)), DomainType(domain_type)


def record_row(make: Callable[..., R]) -> BaseRowFactory[R]:
    """A row factory: the leading columns as they are, the last six as `boot`, `domain_type`."""
    def build(*row: Any) -> R:
        return make(*row[:-len(COLUMNS)], *from_columns(row[-len(COLUMNS):]))
    return args_row(build)
