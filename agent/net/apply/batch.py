"""Link operations sent to the kernel many at a time over one raw rtnetlink socket.

pyroute2 costs about a millisecond per request here (it runs an event loop
per call), which makes hundreds of bridges take seconds. The link changes a
network plan is mostly made of — create a bridge, enslave a port, set up/down,
MTU, delete — are small fixed messages, so they are packed with `struct`,
sent in chunks of many messages per write, and their acknowledgements read
back. A bridge created in the batch gets its interface index chosen up front
(the kernel honours `ifi_index` on RTM_NEWLINK), so later messages can name it
as a master without asking the kernel first.

Operations this module does not pack (addresses, routes, VLANs, bonds) go
through pyroute2 one by one, in order, between chunks. A chunk stops the run
at its first refusal; the caller's rollback then undoes every step of the
chunk — safe, because every undo restores a captured value and tolerates
"already so" (see agent.net.apply.transaction).
"""

from __future__ import annotations

import os
import socket
import struct
from collections.abc import Sequence

from pyroute2 import IPRoute

from agent.net import crashpoints
from agent.net.apply import operations
from agent.net.apply.operations import AddBridge, DeleteLink, Operation, SetMaster, SetMtu, SetUp
from agent.net.netlink.socket import (
    HEADER,
    IFF_UP,
    IFINFO,
    IFLA_ADDRESS,
    IFLA_BR_STP_STATE,
    IFLA_IFNAME,
    IFLA_INFO_DATA,
    IFLA_INFO_KIND,
    IFLA_LINKINFO,
    IFLA_MASTER,
    IFLA_MTU,
    NLM_F_ACK,
    NLM_F_CREATE,
    NLM_F_EXCL,
    NLM_F_REQUEST,
    NLMSG_ERROR,
    RTM_DELLINK,
    RTM_NEWLINK,
    open_rtnl_socket,
    pack_attr,
)

CHUNK_BYTES = 32 * 1024


class BatchFailed(Exception):
    """Step `failed_position` was refused; `position` is the last step that may have reached the kernel."""

    def __init__(self, position: int, failed_position: int, message: str) -> None:
        super().__init__(message)
        self.position = position
        self.failed_position = failed_position


class LinkBatch:
    """One raw rtnetlink socket in the caller's namespace; knows link indexes to name masters."""

    def __init__(self, indexes: dict[str, int], netns: str | None = None) -> None:
        self._indexes = dict(indexes)
        self._next_index = max(self._indexes.values(), default=1) + 1
        self._sock = open_rtnl_socket(netns, rcvbuf=4 * 1024 * 1024)
        self._seq = 0

    def close(self) -> None:
        self._sock.close()

    def run(self, ipr: IPRoute, ops: Sequence[Operation]) -> None:
        """Apply `ops` in order; BatchFailed at the first refusal."""
        chunk: list[tuple[int, bytes]] = []  # (position, message)
        size = 0
        done = 0  # steps known to have reached the kernel (for the crash points)

        def flush() -> None:
            nonlocal chunk, size, done
            if chunk:
                self._flush(chunk)
                crashpoints.progress(done, chunk[-1][0] + 1, len(ops))
                done = chunk[-1][0] + 1
            chunk, size = [], 0

        for position, op in enumerate(ops):
            message = self._encode(op)
            if message is None:
                flush()
                try:
                    operations.apply(ipr, op)
                except Exception as error:
                    raise BatchFailed(position, position, str(error)) from error
                crashpoints.progress(done, position + 1, len(ops))
                done = position + 1
                continue
            if size + len(message) > CHUNK_BYTES:
                flush()
            chunk.append((position, message))
            size += len(message)
        flush()

    def _flush(self, chunk: list[tuple[int, bytes]]) -> None:
        if not chunk:
            return
        first_seq = self._seq + 1
        payload = b"".join(self._stamp(message) for _, message in chunk)
        self._sock.send(payload)
        errors = self._acks(first_seq, len(chunk))
        if errors:
            seq, code = min(errors.items())
            position = chunk[seq - first_seq][0]
            raise BatchFailed(chunk[-1][0], position, f"[Errno {code}] {os.strerror(code)}")

    def _stamp(self, message: bytes) -> bytes:
        """Give the message its sequence number (bytes 8..12 of the header)."""
        self._seq += 1
        return message[:8] + struct.pack("=L", self._seq) + message[12:]

    def _acks(self, first_seq: int, count: int) -> dict[int, int]:
        pending, errors = set(range(first_seq, first_seq + count)), {}
        while pending:
            data = self._sock.recv(1 << 20)
            offset = 0
            while offset + HEADER.size <= len(data):
                length, kind, _, seq, _ = HEADER.unpack_from(data, offset)
                if kind == NLMSG_ERROR and seq in pending:
                    (code,) = struct.unpack_from("=i", data, offset + HEADER.size)
                    pending.discard(seq)
                    if code:
                        errors[seq] = -code
                offset += (length + 3) & ~3
        return errors

    # -- encoding ---------------------------------------------------------------------------

    def _encode(self, op: Operation) -> bytes | None:
        if isinstance(op, AddBridge):
            index = self._next_index
            self._next_index += 1
            self._indexes[op.name] = index
            data = pack_attr(IFLA_BR_STP_STATE, struct.pack("=I", int(op.stp)))
            info = pack_attr(IFLA_INFO_KIND, b"bridge\0") + pack_attr(IFLA_INFO_DATA, data)
            attrs = _name(op.name) + pack_attr(IFLA_MTU, struct.pack("=I", op.mtu)) + pack_attr(IFLA_LINKINFO, info)
            if op.mac:
                attrs += pack_attr(IFLA_ADDRESS, bytes.fromhex(op.mac.replace(":", "")))
            return _message(RTM_NEWLINK, NLM_F_CREATE | NLM_F_EXCL, index, 0, 0, attrs)
        if isinstance(op, SetMaster):
            if op.master and op.master not in self._indexes:
                return None
            master = self._indexes[op.master] if op.master else 0
            return _message(RTM_NEWLINK, 0, 0, 0, 0, _name(op.link) + pack_attr(IFLA_MASTER, struct.pack("=I", master)))
        if isinstance(op, SetUp):
            return _message(RTM_NEWLINK, 0, 0, IFF_UP if op.up else 0, IFF_UP, _name(op.link))
        if isinstance(op, SetMtu):
            return _message(RTM_NEWLINK, 0, 0, 0, 0, _name(op.link) + pack_attr(IFLA_MTU, struct.pack("=I", op.mtu)))
        if isinstance(op, DeleteLink):
            self._indexes.pop(op.name, None)
            return _message(RTM_DELLINK, 0, 0, 0, 0, _name(op.name))
        return None


def for_socket(ipr: IPRoute, indexes: dict[str, int]) -> LinkBatch:
    """A batch talking to the same namespace as `ipr` (opened with `netns=` or living in the caller's)."""
    return LinkBatch(indexes, ipr.status.get("netns"))


def _name(name: str) -> bytes:
    return pack_attr(IFLA_IFNAME, name.encode() + b"\0")


def _message(kind: int, flags: int, index: int, ifi_flags: int, change: int, attrs: bytes) -> bytes:
    body = IFINFO.pack(socket.AF_UNSPEC, 0, index, ifi_flags, change) + attrs
    return HEADER.pack(HEADER.size + len(body), kind, NLM_F_REQUEST | NLM_F_ACK | flags, 0, 0) + body

