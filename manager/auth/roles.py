"""The one table of which role each fleet-API method needs.

Every RPC the manager serves is named here; `tests/manager/test_roles_table.py` fails
when a method is missing, so a new RPC cannot ship without deciding who may call it.
Reads are `auditor`; VM, vNIC, template and snapshot lifecycle is `operator`; hosts,
networks, MAC pools, audit fixes, identities and PKI are `admin`.
"""
from __future__ import annotations

from .identity import Role

A, O, R = Role.ADMIN, Role.OPERATOR, Role.AUDITOR

REQUIRED_ROLE: dict[str, Role] = {
    "/virtfleet.v1.FleetService/EnrollHost": A,
    "/virtfleet.v1.FleetService/ListHosts": R,
    "/virtfleet.v1.FleetService/GetHost": R,
    "/virtfleet.v1.FleetService/DeleteHost": A,
    "/virtfleet.v1.FleetService/GetHostNetworkReport": R,
    "/virtfleet.v1.FleetService/SetupHostManagementNetwork": A,
    "/virtfleet.v1.FleetService/CreateNetwork": A,
    "/virtfleet.v1.FleetService/ListNetworks": R,
    "/virtfleet.v1.FleetService/GetNetwork": R,
    "/virtfleet.v1.FleetService/DeleteNetwork": A,
    "/virtfleet.v1.FleetService/SetupHostNetworks": A,
    "/virtfleet.v1.FleetService/GetHostNetworks": R,
    "/virtfleet.v1.FleetService/AttachNetworkToCluster": A,
    "/virtfleet.v1.FleetService/DetachNetworkFromCluster": A,
    "/virtfleet.v1.FleetService/LabelNetwork": A,
    "/virtfleet.v1.FleetService/UnlabelNetwork": A,
    "/virtfleet.v1.FleetService/LabelHostNic": A,
    "/virtfleet.v1.FleetService/UnlabelHostNic": A,
    "/virtfleet.v1.FleetService/SetHostMaintenance": A,
    "/virtfleet.v1.FleetService/ActivateHost": A,
    "/virtfleet.v1.AuditService/RunAudit": R,          # computes findings, changes nothing
    "/virtfleet.v1.AuditService/ListFindings": R,
    "/virtfleet.v1.AuditService/FixFinding": A,
    "/virtfleet.v1.VmService/CreateVirtualMachine": O,
    "/virtfleet.v1.VmService/CreateVirtualMachines": O,
    "/virtfleet.v1.VmService/ListVirtualMachines": R,
    "/virtfleet.v1.VmService/GetVirtualMachine": R,
    "/virtfleet.v1.VmService/StartVirtualMachine": O,
    "/virtfleet.v1.VmService/StopVirtualMachine": O,
    "/virtfleet.v1.VmService/DeleteVirtualMachine": O,
    "/virtfleet.v1.VmService/AddNic": O,
    "/virtfleet.v1.VmService/RemoveNic": O,
    "/virtfleet.v1.VmService/CheckOrder": R,
    "/virtfleet.v1.VmService/SetNicLink": O,
    "/virtfleet.v1.VmService/SyncNics": O,
    "/virtfleet.v1.VmService/MigrateVirtualMachine": O,
    "/virtfleet.v1.VmService/CancelMigration": O,
    "/virtfleet.v1.VmService/ExplainPlacement": R,
    "/virtfleet.v1.VmService/CreateTemplate": O,
    "/virtfleet.v1.VmService/ListTemplates": R,
    "/virtfleet.v1.VmService/GetTemplate": R,
    "/virtfleet.v1.VmService/DeleteTemplate": O,
    "/virtfleet.v1.VmService/CreateSnapshot": O,
    "/virtfleet.v1.VmService/ListSnapshots": R,
    "/virtfleet.v1.VmService/GetSnapshot": R,
    "/virtfleet.v1.VmService/RestoreSnapshot": O,
    "/virtfleet.v1.VmService/DeleteSnapshot": O,
    "/virtfleet.v1.MacPoolService/CreateMacPool": A,
    "/virtfleet.v1.MacPoolService/ListMacPools": R,
    "/virtfleet.v1.MacPoolService/GetMacPool": R,
    "/virtfleet.v1.MacPoolService/DeleteMacPool": A,
    "/virtfleet.v1.MacPoolService/AddMacPoolRange": A,
    "/virtfleet.v1.MacPoolService/RemoveMacPoolRange": A,
    "/virtfleet.v1.MacPoolService/SetClusterMacPool": A,
    "/virtfleet.v1.AdminService/AddAdmin": A,
    "/virtfleet.v1.AdminService/ListAdmins": A,         # who holds which certificate is the admins' business
    "/virtfleet.v1.AdminService/RevokeAdmin": A,
    "/virtfleet.v1.AdminService/SetAdminRole": A,
    "/virtfleet.v1.EventService/ListEvents": R,
    "/virtfleet.v1.EventService/FollowEvents": R,
    "/virtfleet.v1.PkiService/RevokeHostCertificate": A,
    "/virtfleet.v1.PkiService/RotateCa": A,
    "/virtfleet.v1.PkiService/GetPkiStatus": R,
    # vNIC profiles are the network admins' business (oVirt's), like the networks they belong to
    "/virtfleet.v1.ProfileService/CreateVnicProfile": A,
    "/virtfleet.v1.ProfileService/ListVnicProfiles": R,
    "/virtfleet.v1.ProfileService/GetVnicProfile": R,
    "/virtfleet.v1.ProfileService/UpdateVnicProfile": A,
    "/virtfleet.v1.ProfileService/DeleteVnicProfile": A,
    # health and reflection: anyone who may connect (they tell nothing about the fleet)
    "/grpc.health.v1.Health/Check": R,
    "/grpc.health.v1.Health/Watch": R,
    "/grpc.reflection.v1alpha.ServerReflection/ServerReflectionInfo": R,
}

# Served elsewhere than the fleet API, so not in the table: EnrollService (protos/virtfleet/v1/pki.proto)
# is served only on the enrollment listener (setting enroll_listen), to hosts that have no certificate
# yet; its one-time token is the credential (manager/api/enroll.py).
NOT_FLEET_API: frozenset[str] = frozenset({"virtfleet.v1.EnrollService"})

# Methods that change nothing: their successful calls are not events (every refused call is).
READS: frozenset[str] = frozenset(
    m for m, role in REQUIRED_ROLE.items() if role is R and not m.endswith("/RunAudit")
)


def required_role(method: str) -> Role | None:
    """None: not in the table — refused for everyone (a method nobody decided about)."""
    return REQUIRED_ROLE.get(method)
