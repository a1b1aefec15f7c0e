"""A raw rtnetlink socket for dumps and single requests, and the attribute walk over their answers.

Decoders read their answers straight out of the received buffers
(agent.net.netlink_dump): each message comes as (buffer, body start, end)
and `find_attrs` says where the wanted attributes' payloads sit, without
building an object per attribute.
"""

from __future__ import annotations

import os
import socket
import struct
from collections.abc import Iterator

from agent.net.netlink_batch import open_rtnl_socket

SOL_NETLINK = 270
NETLINK_GET_STRICT_CHK = 12
RECV_BYTES = 64 * 1024
NLM_F_REQUEST, NLM_F_DUMP = 0x1, 0x300
NLMSG_ERROR, NLMSG_DONE = 2, 3
NLM_F_DUMP_INTR = 0x10
NLA_TYPE_MASK = 0x3FFF

_HEADER = struct.Struct("=LHHLL")
_NLA = struct.Struct("=HH")
_I32 = struct.Struct("=i")

Attrs = dict[int, tuple[int, int]]  # attribute type -> (payload start, payload end) in the buffer


def find_attrs(data: bytes, start: int, end: int, wanted: frozenset[int]) -> Attrs:
    """Where each wanted attribute's payload sits; the first of a repeated type wins, as pyroute2's get_attr.

    The walk stops once all wanted ones are found: a bridge's data holds some
    forty attributes and the two the report needs come early.
    """
    found: Attrs = {}
    unpack = _NLA.unpack_from
    left = len(wanted)
    while start + 4 <= end:
        length, kind = unpack(data, start)
        if length < 4:
            break
        kind &= NLA_TYPE_MASK
        if kind in wanted and kind not in found:
            found[kind] = (start + 4, start + length)
            left -= 1
            if not left:
                break
        start += (length + 3) & ~3
    return found


def pack_attr(kind: int, payload: bytes) -> bytes:
    """One request attribute, padded to the 4-byte alignment netlink requires."""
    length = 4 + len(payload)
    return _NLA.pack(length, kind) + payload + b"\0" * (-length % 4)


class NetlinkError(OSError):
    """The kernel refused a request (errno from its NLMSG_ERROR)."""


class RtnlSocket:
    """One rtnetlink socket in a namespace for the length of a read; requests one at a time."""

    def __init__(self, netns: str | None) -> None:
        self._sock = open_rtnl_socket(netns)
        try:
            self._sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1024 * 1024)
            self._sock.bind((0, 0))
        except BaseException:
            self._sock.close()
            raise
        try:
            # Lets the kernel filter route dumps by table instead of sending the local table too;
            # kernels before 4.20 lack it and send everything, which the decoder filters anyway.
            self._sock.setsockopt(SOL_NETLINK, NETLINK_GET_STRICT_CHK, 1)
        except OSError:
            pass
        self._seq = 0
        self.interrupted = False  # a dump saw the kernel's tables change under it: read again

    def __enter__(self) -> RtnlSocket:
        return self

    def __exit__(self, *exc: object) -> None:
        self._sock.close()

    def dump(self, kind: int, body: bytes, answer: int) -> Iterator[tuple[bytes, int, int]]:
        """(buffer, body start, message end) of each `answer` message of a dump."""
        return self._exchange(kind, NLM_F_REQUEST | NLM_F_DUMP, body, answer)

    def request(self, kind: int, body: bytes, answer: int) -> Iterator[tuple[bytes, int, int]]:
        """The one `answer` message to a plain request (at most one is yielded)."""
        return self._exchange(kind, NLM_F_REQUEST, body, answer)

    def _exchange(self, kind: int, flags: int, body: bytes, answer: int) -> Iterator[tuple[bytes, int, int]]:
        self._seq += 1
        seq = self._seq
        self._sock.send(_HEADER.pack(_HEADER.size + len(body), kind, flags, seq, 0) + body)
        dumping = flags & NLM_F_DUMP
        while True:
            data = self._sock.recv(RECV_BYTES)
            offset = 0
            while offset + _HEADER.size <= len(data):
                length, msg_type, msg_flags, msg_seq, _ = _HEADER.unpack_from(data, offset)
                if length < _HEADER.size:
                    raise NetlinkError(0, "malformed netlink message")
                end = offset + length
                if msg_seq == seq:
                    if msg_flags & NLM_F_DUMP_INTR:
                        self.interrupted = True
                    if msg_type == NLMSG_DONE:
                        return
                    if msg_type == NLMSG_ERROR:
                        code = -_I32.unpack_from(data, offset + _HEADER.size)[0]
                        if code:
                            raise NetlinkError(code, os.strerror(code))
                        return
                    if msg_type == answer:
                        yield data, offset + _HEADER.size, end
                        if not dumping:
                            return
                offset = (end + 3) & ~3
