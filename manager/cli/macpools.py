"""`virtfleet macpool …` and `virtfleet cluster set-macpool`."""
from __future__ import annotations

import click

from virtfleet.v1 import macpool_pb2, macpool_pb2_grpc

from .output import OUTPUT_OPTION, as_dict, print_fields, print_json, print_table


def _stub(ctx: click.Context) -> macpool_pb2_grpc.MacPoolServiceStub:
    return ctx.obj.macpools()


# -- parsing what admins type (pure) ------------------------------------------------------------


def parse_range_text(text: str) -> macpool_pb2.MacRange:
    """`FIRST..LAST`, `FIRST-LAST` (colon-separated MACs) or `FIRST+COUNT`; the manager checks the MACs."""
    t = text.strip()
    if "+" in t:
        first, _, count = t.partition("+")
        if not count.isdigit() or int(count) < 1:
            raise click.BadParameter(f"{text!r}: COUNT after '+' must be a positive number", param_hint="--range")
        return macpool_pb2.MacRange(first=first, count=int(count))
    if ".." in t:
        first, _, last = t.partition("..")
    elif t.count("-") == 1:
        first, _, last = t.partition("-")
    else:
        raise click.BadParameter(f"{text!r}: expected FIRST..LAST, FIRST-LAST or FIRST+COUNT", param_hint="--range")
    if not first or not last:
        raise click.BadParameter(f"{text!r}: expected FIRST..LAST, FIRST-LAST or FIRST+COUNT", param_hint="--range")
    return macpool_pb2.MacRange(first=first, last=last)


def _ranges_text(p: macpool_pb2.MacPool) -> str:
    return ", ".join(f"{r.first}..{r.last}" for r in p.ranges)


def _percent(part: int, whole: int) -> str:
    return f"{100.0 * part / whole:.1f} %" if whole else "-"


def _print_pool(p: macpool_pb2.MacPool) -> None:
    u = p.usage
    print_fields([("name", p.name), ("datacenter", p.datacenter), ("default", "yes" if p.is_default else "no"),
                  ("duplicates", "allowed" if p.allow_duplicates else "forbidden"),
                  ("ranges", _ranges_text(p)), ("clusters", ", ".join(p.clusters) or "-"),
                  ("total", u.total), ("used", u.used), ("free", f"{u.free} ({_percent(u.free, u.total)})"),
                  ("custom", u.custom)])


# -- commands -----------------------------------------------------------------------------------


@click.group("macpool")
def macpool_group() -> None:
    """MAC address pools: the addresses handed out to vNICs (each cluster uses one pool)."""


@macpool_group.command("create")
@click.argument("name")
@click.option("--range", "ranges", multiple=True, required=True, metavar="FIRST..LAST|FIRST+COUNT",
              help="addresses of the pool (repeatable; overlapping ranges are merged), "
                   "e.g. 02:1a:4a:00:00:00..02:1a:4a:00:ff:ff or 02:1a:4a:00:00:00+65536")
@click.option("--allow-duplicates", is_flag=True, help="let a MAC of this pool be used more than once")
@click.option("--datacenter", default="", help="default: Default")
@OUTPUT_OPTION
@click.pass_context
def macpool_create(ctx, name, ranges, allow_duplicates, datacenter, output):
    """Create MAC pool NAME."""
    pool = _stub(ctx).CreateMacPool(macpool_pb2.CreateMacPoolRequest(pool=macpool_pb2.MacPool(
        name=name, datacenter=datacenter, allow_duplicates=allow_duplicates,
        ranges=[parse_range_text(r) for r in ranges])), timeout=30)
    if output == "json":
        print_json(as_dict(pool))
    else:
        click.echo(f"created MAC pool {pool.name}: {pool.usage.total} addresses ({_ranges_text(pool)})")


@macpool_group.command("list")
@OUTPUT_OPTION
@click.pass_context
def macpool_list(ctx, output):
    """All MAC pools with their usage."""
    pools = _stub(ctx).ListMacPools(macpool_pb2.ListMacPoolsRequest(), timeout=30).pools
    if output == "json":
        print_json([as_dict(p) for p in pools])
        return
    print_table(["NAME", "DATACENTER", "RANGES", "TOTAL", "USED", "FREE", "DUPS", "CLUSTERS"],
                [(p.name + (" *" if p.is_default else ""), p.datacenter, len(p.ranges), p.usage.total,
                  p.usage.used, p.usage.free, "yes" if p.allow_duplicates else "no", ", ".join(p.clusters))
                 for p in pools])
    click.echo("* the datacenter's default pool")


@macpool_group.command("show")
@click.argument("name")
@click.option("--datacenter", default="", help="default: Default")
@OUTPUT_OPTION
@click.pass_context
def macpool_show(ctx, name, datacenter, output):
    """One MAC pool: ranges, clusters and usage."""
    pool = _stub(ctx).GetMacPool(macpool_pb2.GetMacPoolRequest(name=name, datacenter=datacenter), timeout=30)
    if output == "json":
        print_json(as_dict(pool))
    else:
        _print_pool(pool)


@macpool_group.command("usage")
@click.argument("name")
@click.option("--datacenter", default="", help="default: Default")
@OUTPUT_OPTION
@click.pass_context
def macpool_usage(ctx, name, datacenter, output):
    """How full MAC pool NAME is: total, used, free, custom (in use outside its ranges)."""
    u = _stub(ctx).GetMacPool(macpool_pb2.GetMacPoolRequest(name=name, datacenter=datacenter), timeout=30).usage
    if output == "json":
        print_json(as_dict(u))
        return
    print_fields([("total", u.total), ("used", u.used), ("free", f"{u.free} ({_percent(u.free, u.total)})"),
                  ("custom", u.custom)])


@macpool_group.command("delete")
@click.argument("name")
@click.option("--datacenter", default="", help="default: Default")
@click.pass_context
def macpool_delete(ctx, name, datacenter):
    """Delete a MAC pool no cluster uses."""
    _stub(ctx).DeleteMacPool(macpool_pb2.DeleteMacPoolRequest(name=name, datacenter=datacenter), timeout=30)
    click.echo(f"deleted MAC pool {name}")


def _range_arg(first: str, last: str | None, count: int | None) -> macpool_pb2.MacRange:
    if (last is None) == (count is None):
        raise click.UsageError("give LAST or --count (not both)")
    return macpool_pb2.MacRange(first=first, last=last or "", count=count or 0)


def _range_command(name: str):
    """`macpool add-range|remove-range NAME FIRST [LAST] [--count N]`: one set of arguments, one answer."""
    shared = (macpool_group.command(name), click.argument("name"), click.argument("first"),
              click.argument("last", required=False),
              click.option("--count", type=click.IntRange(min=1), default=None,
                           help="COUNT addresses from FIRST instead of LAST"),
              click.option("--datacenter", default="", help="default: Default"), OUTPUT_OPTION, click.pass_context)

    def decorate(fn):
        for decorator in reversed(shared):
            fn = decorator(fn)
        return fn
    return decorate


def _show_ranges(pool: macpool_pb2.MacPool, output: str) -> None:
    if output == "json":
        print_json(as_dict(pool))
    else:
        click.echo(f"MAC pool {pool.name}: {pool.usage.total} addresses ({_ranges_text(pool) or 'no ranges'})")


@_range_command("add-range")
def macpool_add_range(ctx, name, first, last, count, datacenter, output):
    """Add FIRST..LAST (inclusive) to MAC pool NAME."""
    _show_ranges(_stub(ctx).AddMacPoolRange(macpool_pb2.MacPoolRangeRequest(
        name=name, datacenter=datacenter, range=_range_arg(first, last, count)), timeout=30), output)


@_range_command("remove-range")
def macpool_remove_range(ctx, name, first, last, count, datacenter, output):
    """Take FIRST..LAST out of MAC pool NAME: a whole range or part of one (refused while in use)."""
    _show_ranges(_stub(ctx).RemoveMacPoolRange(macpool_pb2.MacPoolRangeRequest(
        name=name, datacenter=datacenter, range=_range_arg(first, last, count)), timeout=30), output)


@click.group("cluster")
def cluster_group() -> None:
    """Clusters of the datacenter."""


@cluster_group.command("set-macpool")
@click.argument("cluster")
@click.argument("pool")
@OUTPUT_OPTION
@click.pass_context
def cluster_set_macpool(ctx, cluster, pool, output):
    """Move CLUSTER, with every MAC its vNICs hold, to MAC pool POOL."""
    reply = _stub(ctx).SetClusterMacPool(macpool_pb2.SetClusterMacPoolRequest(cluster=cluster, mac_pool=pool),
                                         timeout=60)
    if output == "json":
        print_json(as_dict(reply))
    else:
        click.echo(f"cluster {cluster} now uses MAC pool {reply.pool.name} ({reply.moved_macs} MAC(s) moved)")
