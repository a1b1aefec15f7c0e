"""vNIC profiles: made on VM networks, edited (which marks running vNICs out of sync), deleted when unused.

The database guarantees what can be guaranteed there (every network's default profile,
unique names, QoS ranges, a vNIC's profile on its own network); this checks what it
cannot word for the admin: a profile on a network without a bridge, deleting a profile
in use (listing its vNICs) or a network's own. An edit changes only the record: the
running guests get it through `vm nic sync` (VnicService.sync_nics), or at their next start.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass

from psycopg_pool import ConnectionPool

from virtfleet.errors import Aborted, FailedPrecondition, InvalidArgument

from ..domain.vnicprofile import ProfileSettings, VnicProfile, profile_name
from ..store import profiles as store

log = logging.getLogger(__name__)

DEFAULT_DATACENTER = "Default"
SHOWN_USERS = 20


@dataclass(frozen=True)
class ProfileView:
    profile: VnicProfile
    vnics: list[str]          # VM/nic of the vNICs using it (filled by `get`)


def _refuse_non_vm_network(network: str, vm_network: bool) -> None:
    if not vm_network:
        raise InvalidArgument("profile.network", f"network {network} is not a VM network (no bridge): profiles "
                                                 "are for vNICs on a VM network")


def _listed(items: list[str]) -> str:
    return ", ".join(items[:SHOWN_USERS]) + (f" … ({len(items)} in all)" if len(items) > SHOWN_USERS else "")


class ProfileService:
    def __init__(self, pool: ConnectionPool) -> None:
        self._pool = pool

    def apply_anti_spoofing_setting(self, on: bool) -> None:
        """The manager's `mac_anti_spoofing`, written where the database's default-profile trigger reads it."""
        with self._pool.connection() as conn:
            store.set_anti_spoofing(conn, on)

    def create(self, *, name: str, datacenter: str, network: str, settings: ProfileSettings) -> ProfileView:
        profile_name(name, "profile.name")
        dc = datacenter or DEFAULT_DATACENTER
        with self._pool.connection() as conn, conn.transaction():
            dc_id, net_id, vm_network = store.network_of_datacenter(conn, network, dc)
            _refuse_non_vm_network(network, vm_network)
            store.insert_profile(conn, name=name, datacenter_id=dc_id, network_id=net_id, settings=settings)
            created = store.get_profile(conn, name, dc)
        log.info("created vNIC profile %s on network %s", name, network)
        return ProfileView(created, [])

    def list(self, *, datacenter: str = "", network: str = "") -> list[ProfileView]:
        with self._pool.connection() as conn:
            return [ProfileView(p, []) for p in store.list_profiles(conn, datacenter, network)]

    def get(self, name: str, datacenter: str = "") -> ProfileView:
        with self._pool.connection() as conn:
            p = store.get_profile(conn, name, datacenter or DEFAULT_DATACENTER)
            return ProfileView(p, store.users(conn, p.id))

    def update(self, *, name: str, datacenter: str, network: str, settings: ProfileSettings,
               based_on: int = 0) -> ProfileView:
        """Replaces the settings; `based_on` (a generation the caller read) refuses an edit made on a stale read."""
        dc = datacenter or DEFAULT_DATACENTER
        with self._pool.connection() as conn, conn.transaction():
            p = store.get_profile(conn, name, dc, lock=True)
            if network and network != p.network:
                raise InvalidArgument("profile.network", f"profile {name} is on network {p.network}; a profile "
                                                         "cannot move to another network")
            _, _, vm_network = store.network_of_datacenter(conn, p.network, dc)
            if settings != ProfileSettings():
                _refuse_non_vm_network(p.network, vm_network)
            if based_on and based_on != p.generation:
                raise Aborted(f"profile {name} was changed meanwhile (generation {p.generation}, the edit was based "
                              f"on {based_on}); read it again and repeat the edit")
            store.update_settings(conn, p.id, settings)
            updated = store.get_profile(conn, name, dc)
            users = store.users(conn, p.id)
        log.info("edited vNIC profile %s (generation %d)", name, updated.generation)
        return ProfileView(updated, users)

    def delete(self, name: str, datacenter: str = "") -> None:
        dc = datacenter or DEFAULT_DATACENTER
        with self._pool.connection() as conn, conn.transaction():
            p = store.get_profile(conn, name, dc, lock=True)
            if p.is_default:
                raise FailedPrecondition(f"profile {name} is network {p.network}'s own profile; it goes with the "
                                         "network")
            users = store.users(conn, p.id)
            if users:
                raise FailedPrecondition(f"profile {name} is used by {len(users)} vNIC(s): {_listed(users)}; give "
                                         "them another profile or remove them first")
            holders = store.template_users(conn, p)
            if holders:
                raise FailedPrecondition(f"profile {name} is named by vNICs of {_listed(holders)}; delete those "
                                         "first")
            store.delete_profile(conn, p.id)
        log.info("deleted vNIC profile %s", name)
