"""MacPoolService: MAC pools and the pool each cluster uses."""
from __future__ import annotations

from virtfleet import rules
from virtfleet.macaddr import format_mac
from virtfleet.rpc import translating_errors
from virtfleet.v1 import macpool_pb2, macpool_pb2_grpc

from ..macpool.ranges import MacRange, parse_range
from ..service.macpools import MacPoolService, PoolView


def range_from_message(r: macpool_pb2.MacRange, field: str) -> MacRange:
    return parse_range(r.first, r.last, r.count, field)


def pool_message(v: PoolView) -> macpool_pb2.MacPool:
    p = v.pool
    return macpool_pb2.MacPool(
        name=p.name, datacenter=p.datacenter, allow_duplicates=p.allow_duplicates, is_default=p.is_default,
        ranges=[macpool_pb2.MacRange(first=format_mac(r.first), last=format_mac(r.last), count=r.size)
                for r in p.ranges],
        usage=macpool_pb2.MacPoolUsage(total=v.total, used=v.used, free=v.free, custom=v.custom),
        clusters=v.clusters,
    )


class MacPoolServicer(macpool_pb2_grpc.MacPoolServiceServicer):
    def __init__(self, pools: MacPoolService) -> None:
        self._pools = pools

    @translating_errors
    def CreateMacPool(self, request, context):
        p = request.pool
        # Counted before any is parsed: a request may not make the manager parse an unbounded list.
        rules.count_within(len(p.ranges), rules.MAX_RANGES_PER_POOL, "pool.ranges", "ranges per MAC pool")
        ranges = [range_from_message(r, f"pool.ranges[{i}]") for i, r in enumerate(p.ranges)]
        return pool_message(self._pools.create(name=p.name, datacenter=p.datacenter, ranges=ranges,
                                                allow_duplicates=p.allow_duplicates))

    @translating_errors
    def ListMacPools(self, request, context):
        return macpool_pb2.ListMacPoolsResponse(pools=[pool_message(v) for v in self._pools.list()])

    @translating_errors
    def GetMacPool(self, request, context):
        return pool_message(self._pools.get(request.name, request.datacenter))

    @translating_errors
    def DeleteMacPool(self, request, context):
        self._pools.delete(request.name, request.datacenter)
        return macpool_pb2.DeleteMacPoolResponse()

    @translating_errors
    def AddMacPoolRange(self, request, context):
        r = range_from_message(request.range, "range")
        return pool_message(self._pools.add_range(request.name, r, request.datacenter))

    @translating_errors
    def RemoveMacPoolRange(self, request, context):
        r = range_from_message(request.range, "range")
        return pool_message(self._pools.remove_range(request.name, r, request.datacenter))

    @translating_errors
    def SetClusterMacPool(self, request, context):
        view, moved = self._pools.set_cluster_pool(request.cluster, request.mac_pool)
        return macpool_pb2.SetClusterMacPoolResponse(pool=pool_message(view), moved_macs=moved)
