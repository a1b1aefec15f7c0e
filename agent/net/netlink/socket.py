"""Raw rtnetlink: the constants, the namespace socket opener, one request/dump socket, attributes.

The bottom of agent/net. Readers (agent.net.netlink.dump, the state watcher)
and the batch writer (agent.net.apply.batch) all open their sockets here, so
there is one way into a named network namespace and one definition of every
kernel number they exchange. Answers are read straight out of the received
buffers: each message comes as (buffer, body start, end) and `find_attrs` says
where the wanted attributes' payloads sit, without building an object per
attribute.
"""

from __future__ import annotations

import ctypes
import os
import socket
import struct
import threading
from collections.abc import Iterator

# -- constants: linux/netlink.h ----------------------------------------------------------------
NETLINK_ROUTE = 0
SOL_NETLINK = 270
NETLINK_NO_ENOBUFS = 5
NETLINK_GET_STRICT_CHK = 12
NLMSG_ERROR, NLMSG_DONE = 2, 3
NLM_F_REQUEST, NLM_F_ACK, NLM_F_DUMP_INTR = 0x1, 0x4, 0x10
NLM_F_EXCL, NLM_F_CREATE, NLM_F_DUMP = 0x200, 0x400, 0x300
NLA_TYPE_MASK = 0x3FFF

# -- linux/rtnetlink.h: message types, multicast groups, tables -------------------------------
RTM_NEWLINK, RTM_DELLINK, RTM_GETLINK = 16, 17, 18
RTM_NEWADDR, RTM_GETADDR = 20, 22
RTM_NEWROUTE, RTM_GETROUTE = 24, 26
RTM_NEWNSID, RTM_GETNSID = 88, 90
RTMGRP_LINK, RTMGRP_IPV4_IFADDR, RTMGRP_IPV4_ROUTE, RTMGRP_IPV6_IFADDR, RTMGRP_IPV6_ROUTE = 0x1, 0x10, 0x40, 0x100, 0x400
RT_TABLE_MAIN = 254
RTN_UNICAST = 1
RTEXT_FILTER_SKIP_STATS = 1 << 3

# -- linux/if.h, linux/if_link.h: links ------------------------------------------------------
IFF_UP, IFF_RUNNING = 0x1, 0x40
IFLA_ADDRESS, IFLA_BROADCAST, IFLA_IFNAME, IFLA_MTU, IFLA_LINK, IFLA_QDISC = 1, 2, 3, 4, 5, 6
IFLA_MASTER, IFLA_TXQLEN, IFLA_OPERSTATE, IFLA_LINKINFO, IFLA_GROUP, IFLA_EXT_MASK = 10, 13, 16, 18, 27, 29
IFLA_LINK_NETNSID, IFLA_PERM_ADDRESS = 37, 54
IFLA_INFO_KIND, IFLA_INFO_DATA = 1, 2
IFLA_BR_STP_STATE, IFLA_BR_BRIDGE_ID = 5, 11
IFLA_VLAN_ID = 1
IFLA_MACVLAN_MODE = 1

# -- linux/if_addr.h: addresses --------------------------------------------------------------
IFA_ADDRESS, IFA_LOCAL, IFA_LABEL, IFA_BROADCAST, IFA_CACHEINFO, IFA_FLAGS = 1, 2, 3, 4, 6, 8
IFA_F_SECONDARY, IFA_F_PERMANENT, IFA_F_NOPREFIXROUTE = 0x01, 0x80, 0x200
INFINITY_LIFE_TIME = 0xFFFFFFFF

# -- routes and namespaces --------------------------------------------------------------------
RTA_DST, RTA_OIF, RTA_GATEWAY, RTA_PRIORITY, RTA_PREFSRC, RTA_TABLE = 1, 4, 5, 6, 7, 15
NETNSA_NSID, NETNSA_FD = 1, 3
NETNS_RUN_DIR = "/run/netns"  # where `ip netns add` names namespaces
CLONE_NEWNET = 0x40000000

HEADER = struct.Struct("=LHHLL")  # nlmsghdr: length, type, flags, sequence, port
IFINFO = struct.Struct("=BxHiII")  # ifinfomsg: family, type, index, flags, change mask
RECV_BYTES = 64 * 1024

_NLA = struct.Struct("=HH")
_I32 = struct.Struct("=i")
_libc = ctypes.CDLL(None, use_errno=True)

Attrs = dict[int, tuple[int, int]]  # attribute type -> (payload start, payload end) in the buffer


def open_rtnl_socket(netns: str | None, *, rcvbuf: int, groups: int = 0) -> socket.socket:
    """A bound NETLINK_ROUTE socket in the named namespace (None: the caller's), on `groups` if any.

    pyroute2 forks a helper to open a socket in another namespace, which a
    process running gRPC threads must not do; this enters the namespace in a
    short-lived thread instead.
    """
    sock = _socket_in(netns) if netns else _rtnl_socket()
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
        sock.bind((0, groups))
    except BaseException:
        sock.close()
        raise
    return sock


def _rtnl_socket() -> socket.socket:
    return socket.socket(socket.AF_NETLINK, socket.SOCK_RAW, NETLINK_ROUTE)


def _socket_in(netns: str) -> socket.socket:
    """A socket belongs to the namespace of the thread that made it: make it in a thread that entered `netns`."""
    made: list[socket.socket | BaseException] = []

    def enter_and_make() -> None:
        try:
            fd = os.open(os.path.join(NETNS_RUN_DIR, netns), os.O_RDONLY)
            try:
                if _libc.setns(fd, CLONE_NEWNET) != 0:
                    raise OSError(ctypes.get_errno(), f"setns into {netns}")
            finally:
                os.close(fd)
            made.append(_rtnl_socket())
        except BaseException as error:  # handed to the caller's thread
            made.append(error)

    thread = threading.Thread(target=enter_and_make, name=f"netns-{netns}")
    thread.start()
    thread.join()
    if isinstance(made[0], BaseException):
        raise made[0]
    return made[0]


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
        self._sock = open_rtnl_socket(netns, rcvbuf=1024 * 1024)
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
        self._sock.send(HEADER.pack(HEADER.size + len(body), kind, flags, seq, 0) + body)
        dumping = flags & NLM_F_DUMP
        while True:
            data = self._sock.recv(RECV_BYTES)
            offset = 0
            while offset + HEADER.size <= len(data):
                length, msg_type, msg_flags, msg_seq, _ = HEADER.unpack_from(data, offset)
                if length < HEADER.size:
                    raise NetlinkError(0, "malformed netlink message")
                end = offset + length
                if msg_seq == seq:
                    if msg_flags & NLM_F_DUMP_INTR:
                        self.interrupted = True
                    if msg_type == NLMSG_DONE:
                        return
                    if msg_type == NLMSG_ERROR:
                        code = -_I32.unpack_from(data, offset + HEADER.size)[0]
                        if code:
                            raise NetlinkError(code, os.strerror(code))
                        return
                    if msg_type == answer:
                        yield data, offset + HEADER.size, end
                        if not dumping:
                            return
                offset = (end + 3) & ~3
