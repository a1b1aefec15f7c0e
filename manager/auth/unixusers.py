"""Local users: who a uid is, and the role its groups give it.

The decision (`role_of`) is pure; `unix_identity` reads the user and group
databases (pwd/grp, so NSS sources count too) at login time — a group change
takes effect at the user's next login, as it does for a shell.
"""
from __future__ import annotations

import grp
import os
import pwd
from dataclasses import dataclass

from .identity import Identity, Kind, Role


@dataclass(frozen=True)
class RoleGroups:
    """The group names that give a role (configurable: `admin_group`, `operator_group`, `auditor_group`)."""

    admin: str = "virtfleet-admin"
    operator: str = "virtfleet-operator"
    auditor: str = "virtfleet-auditor"


def role_of(uid: int, groups: set[str], names: RoleGroups) -> Role | None:
    """root and the admin group: admin; then operator, then auditor; the highest group wins; else none."""
    if uid == 0 or names.admin in groups:
        return Role.ADMIN
    if names.operator in groups:
        return Role.OPERATOR
    if names.auditor in groups:
        return Role.AUDITOR
    return None


def group_names(uid: int) -> tuple[str, set[str]]:
    """The user's name and the names of all its groups (primary and supplementary)."""
    try:
        user = pwd.getpwuid(uid)
    except KeyError:          # a uid with no passwd entry: known only by number, in no group by name
        return f"uid{uid}", set()
    names = set()
    for gid in os.getgrouplist(user.pw_name, user.pw_gid):
        try:
            names.add(grp.getgrgid(gid).gr_name)
        except KeyError:
            pass
    return user.pw_name, names


def unix_identity(uid: int, pid: int, names: RoleGroups) -> Identity:
    user, groups = group_names(uid)
    return Identity(user, Kind.UNIX, role_of(uid, groups, names), peer=f"uid={uid} pid={pid}")
