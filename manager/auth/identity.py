"""An identity: who made a fleet-API call, as the events table records it."""
from __future__ import annotations

from dataclasses import dataclass
from enum import Enum


class Role(str, Enum):
    """Ordered: each role may do everything the ones below it may."""

    AUDITOR = "auditor"    # read-only
    OPERATOR = "operator"  # VM, vNIC, template and snapshot lifecycle
    ADMIN = "admin"        # everything

    @property
    def rank(self) -> int:
        return _RANKS[self]

    def allows(self, needed: "Role") -> bool:
        return self.rank >= needed.rank


_RANKS = {Role.AUDITOR: 0, Role.OPERATOR: 1, Role.ADMIN: 2}


class Kind(str, Enum):
    UNIX = "unix"        # a local user: uid from SO_PEERCRED on the manager's socket
    CERT = "cert"        # a remote admin: a client certificate issued by the manager's CA
    HOST = "host"        # an agent, by its pinned certificate
    SYSTEM = "system"    # the manager itself (monitor, audit, renewals)
    ANONYMOUS = "anonymous"


@dataclass(frozen=True)
class Identity:
    """`role` is None for a caller the manager knows of but who holds no role (refused everything)."""

    name: str            # user name, admin name, host name, "manager"
    kind: Kind
    role: Role | None
    peer: str = ""       # "uid=1000 pid=4242" or "ipv6:[::1]:51234"

    def may(self, needed: Role) -> bool:
        return self.role is not None and self.role.allows(needed)


SYSTEM = Identity("manager", Kind.SYSTEM, Role.ADMIN)
