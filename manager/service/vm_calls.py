"""Agent calls of VM changes, made with no transaction open, and the claims that stand in for row locks.

A change that calls an agent claims the VM in a short transaction (store/vms.py),
calls with nothing open, and records the result only if its claim still holds; a
failed change ends its claim here, and a claim nobody ends expires.

The claim is also the per-VM bound on in-flight work: a second change of a VM
whose first is stuck on its agent is refused "busy" at once, holding no API
worker. `change` is the manager-wide bound (AgentClients.vm_change), taken
before the claim so a refusal leaves nothing to undo. Agent calls carry the
caller's deadline (AgentClients); clean-ups (`quietly`) run whatever the caller
did, since they put back what a failed change left.
"""
from __future__ import annotations

import logging
import uuid
from contextlib import AbstractContextManager
from typing import Callable, TypeVar

import psycopg
from psycopg_pool import ConnectionPool

from virtfleet.errors import FailedPrecondition, VirtfleetError
from virtfleet.v1 import vm_pb2_grpc

from ..agents import AgentClients
from ..store import vms as store
from ..store.vms import HostRef, VmRecord

log = logging.getLogger(__name__)
T = TypeVar("T")


def refuse_busy(vm: VmRecord) -> None:
    """A VM a runtime change has claimed takes no other change until that one is recorded."""
    if vm.migrating_to:
        raise FailedPrecondition(f"VM {vm.name} is being migrated to {vm.migrating_to}; try again when the "
                                 f"migration has ended, or cancel it: `virtfleet vm migrate --cancel {vm.name}`")
    if vm.busy:
        raise FailedPrecondition(f"VM {vm.name} is being started, stopped, hot-plugged or migrated by another request; "
                                 "try again when it is done")


class VmAgentCalls:
    def __init__(self, pool: ConnectionPool, agents: AgentClients) -> None:
        self._pool = pool
        self._agents = agents

    def change(self, what: str) -> AbstractContextManager[None]:
        """Hold one of the manager's bounded VM changes (RESOURCE_EXHAUSTED when none is free)."""
        return self._agents.vm_change(what)

    def call(self, host: HostRef, fn: Callable[[vm_pb2_grpc.VmAgentServiceStub, float], T], *,
             extra_s: float = 0.0) -> T:
        """On the caller's behalf: its deadline bounds the call, and a caller gone already gets no call."""
        return self._agents.call_vm(host.name, host.endpoint, fn, extra_s=extra_s)

    def quietly(self, host: HostRef, what: str, fn: Callable[[vm_pb2_grpc.VmAgentServiceStub, float], object]) -> None:
        """Clean-up on a host: a failure is logged, not raised (the error that made it necessary wins).

        Made with the client's own timeout even when the caller has gone: the clean-up is owed to the host.
        """
        try:
            self._agents.call_vm(host.name, host.endpoint, fn, for_caller=False)
        except VirtfleetError as exc:
            log.warning("could not %s on %s: %s", what, host.name, exc.message)

    def release(self, vm_id: int, token: uuid.UUID) -> None:
        """End a claim whose change failed; if even that fails, the claim expires (store.CLAIM_LIFETIME)."""
        try:
            with self._pool.connection() as conn, conn.transaction():
                store.release_claim(conn, vm_id, token)
        except psycopg.Error:
            log.exception("could not release the claim on VM #%d; it expires after %s", vm_id, store.CLAIM_LIFETIME)
