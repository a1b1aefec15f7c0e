"""FleetService: the API the admin CLI speaks."""
from __future__ import annotations


import grpc

from virtfleet.rpc import translating_errors
from virtfleet.v1 import fleet_pb2, fleet_pb2_grpc, hostnet_pb2

from ..pki import fingerprint
from ..service.hosts import HostService, Report
from ..service.labels import HostLabelChange, LabelService
from ..service.maintenance import MaintenanceService
from ..service.networks import HostNetworks, NetworkService, NetworkView, agent_bond
from ..store.hosts import HostRecord
from ..store.networks import AttachmentRecord, NetworkRecord
from .timestamps import timestamp



def host_message(h: HostRecord, nic_labels: list[tuple[str, str]] = ()) -> fleet_pb2.Host:
    return fleet_pb2.Host(
        name=h.name, address=h.address, endpoint=h.endpoint, datacenter=h.datacenter, cluster=h.cluster,
        status=h.shown_status, cert_fingerprint=h.cert_fingerprint,
        enrolled_at=timestamp(h.enrolled_at), last_report_at=timestamp(h.last_report_at),
        status_reason=status_reason(h),
        nic_labels=[fleet_pb2.NicLabel(nic=nic, label=label) for nic, label in nic_labels],
    )


def status_reason(h: HostRecord) -> str:
    """Why a host is non-operational; for a host in maintenance, its monitored status beside it."""
    why = h.status_reason if h.status == "non-operational" else ""
    if h.shown_status == h.status:
        return why
    return f"monitored status: {h.status}" + (f" ({why})" if why else "")


def report_message(r: Report) -> fleet_pb2.HostNetworkReport:
    return fleet_pb2.HostNetworkReport(
        host=r.host, state=r.state, sequence=r.sequence, reported_at=timestamp(r.record.reported_at)
    )


def network_message(n: NetworkRecord, view: NetworkView | None = None) -> fleet_pb2.LogicalNetwork:
    message = fleet_pb2.LogicalNetwork(name=n.name, datacenter=n.datacenter, vlan=n.vlan or 0, mtu=n.mtu,
                                       vm_network=n.vm_network, description=n.description)
    if view is not None:
        message.labels.extend(view.labels)
        message.clusters.extend(fleet_pb2.NetworkCluster(cluster=c.cluster, required=c.required,
                                                         migration=c.migration) for c in view.clusters)
    return message


def network_view_message(v: NetworkView) -> fleet_pb2.LogicalNetwork:
    return network_message(v.network, v)


def label_outcome(changes: list[HostLabelChange]) -> fleet_pb2.LabelOutcome:
    return fleet_pb2.LabelOutcome(hosts=[fleet_pb2.HostLabelChange(
        host=c.host, attached=c.attached, detached=c.detached, applied=c.applied, error=c.error, skipped=c.skipped)
        for c in changes])


def attachment_message(a: AttachmentRecord) -> fleet_pb2.HostAttachment:
    return fleet_pb2.HostAttachment(
        network=a.network, nic=a.nic, default_route=a.default_route,
        ipv4=hostnet_pb2.Ipv4Config(method=a.ipv4_method, address=a.ipv4_address or "",
                                    prefixlen=a.ipv4_prefixlen or 0, gateway=a.ipv4_gateway or ""),
    )


def host_networks_message(v: HostNetworks) -> fleet_pb2.HostNetworksView:
    return fleet_pb2.HostNetworksView(
        host=v.host,
        networks=[fleet_pb2.NetworkSyncStatus(
            network=s.attachment.network, nic=s.attachment.nic, in_sync=s.in_sync,
            differences=[fleet_pb2.Difference(field=d.field, expected=d.expected, found=d.found)
                         for d in s.differences],
            desired=attachment_message(s.attachment)) for s in v.networks],
        bonds=[agent_bond(b) for b in v.bonds],
    )


class FleetServicer(fleet_pb2_grpc.FleetServiceServicer):
    def __init__(self, hosts: HostService, networks: NetworkService, labels: LabelService,
                 maintenance: MaintenanceService | None = None) -> None:
        self._maintenance = maintenance
        self._hosts = hosts
        self._networks = networks
        self._labels = labels

    @translating_errors
    def EnrollHost(self, request: fleet_pb2.EnrollHostRequest, context: grpc.ServicerContext):
        e = self._hosts.enroll(
            name=request.name, address=request.address, endpoint=request.endpoint,
            cluster=request.cluster, csr_pem=request.csr_pem,
            nic_labels=[(label.nic, label.label) for label in request.nic_labels],
        )
        return fleet_pb2.EnrollHostResponse(
            host=host_message(e.host, self._hosts.nic_labels(e.host.name)), certificate_pem=e.certificate_pem, ca_certificate_pem=e.ca_certificate_pem,
            enroll_token=e.token, token_expires_at=timestamp(e.token_expires_at),
            ca_fingerprint=fingerprint(e.ca_certificate_pem), enroll_endpoint=self._hosts.enroll_endpoint,
        )

    @translating_errors
    def ListHosts(self, request, context):
        return fleet_pb2.ListHostsResponse(hosts=[host_message(h) for h in self._hosts.list()])

    @translating_errors
    def GetHost(self, request, context):
        return host_message(self._hosts.get(request.name), self._hosts.nic_labels(request.name))

    @translating_errors
    def DeleteHost(self, request, context):
        self._hosts.delete(request.name)
        return fleet_pb2.DeleteHostResponse()

    @translating_errors
    def GetHostNetworkReport(self, request, context):
        return report_message(self._hosts.network_report(request.name, cached=request.cached))

    @translating_errors
    def SetupHostManagementNetwork(self, request, context):
        result = self._hosts.setup_management(request.name, request.nic, dry_run=request.dry_run)
        return fleet_pb2.SetupHostManagementNetworkResponse(
            changed=result.changed, steps=result.steps,
            report=report_message(result.report) if result.report else None,
        )

    @translating_errors
    def CreateNetwork(self, request, context):
        n = request.network
        created = self._networks.create(
            name=n.name, datacenter=n.datacenter, vlan=n.vlan, mtu=n.mtu, vm_network=not request.no_vm_network,
            description=n.description)
        return network_view_message(self._networks.view(created.name, created.datacenter))

    @translating_errors
    def ListNetworks(self, request, context):
        return fleet_pb2.ListNetworksResponse(networks=[network_view_message(v) for v in self._networks.views()])

    @translating_errors
    def GetNetwork(self, request, context):
        return network_view_message(self._networks.view(request.name))

    @translating_errors
    def DeleteNetwork(self, request, context):
        self._networks.delete(request.name)
        return fleet_pb2.DeleteNetworkResponse()

    @translating_errors
    def SetupHostNetworks(self, request, context):
        result = self._networks.setup_host(
            request.host, attach=list(request.attach), detach=list(request.detach), bonds=list(request.bonds),
            remove_bonds=list(request.remove_bonds), plan=request.plan,
            connectivity_timeout_s=request.connectivity_timeout_s)
        return fleet_pb2.SetupHostNetworksResponse(
            steps=result.steps, applied=result.applied,
            view=host_networks_message(result.view) if result.view else None)

    @translating_errors
    def GetHostNetworks(self, request, context):
        return host_networks_message(self._networks.host_view(request.host))

    @translating_errors
    def AttachNetworkToCluster(self, request, context):
        return network_view_message(self._networks.attach_cluster(request.network, request.cluster,
                                                                  required=request.required,
                                                                  migration=request.migration))

    @translating_errors
    def DetachNetworkFromCluster(self, request, context):
        return network_view_message(self._networks.detach_cluster(request.network, request.cluster))

    @translating_errors
    def LabelNetwork(self, request, context):
        return label_outcome(self._labels.label_network(request.network, request.label))

    @translating_errors
    def UnlabelNetwork(self, request, context):
        return label_outcome(self._labels.unlabel_network(request.network, request.label))

    @translating_errors
    def LabelHostNic(self, request, context):
        return label_outcome(self._labels.label_host_nic(request.host, request.nic, request.label))

    @translating_errors
    def UnlabelHostNic(self, request, context):
        return label_outcome(self._labels.unlabel_host_nic(request.host, request.nic, request.label))

    @translating_errors
    def ActivateHost(self, request, context):
        return host_message(self._hosts.activate(request.name), self._hosts.nic_labels(request.name))

    # -- maintenance (issue 16) -------------------------------------------------------------------

    @translating_errors
    def SetHostMaintenance(self, request, context):
        """Streams each VM's migration as it starts and ends, then the host's own step."""
        for step in self._maintenance.set_maintenance(request.name):
            yield fleet_pb2.MaintenanceProgress(host=step.host, vm=step.vm, destination=step.destination,
                                                state=step.state, message=step.message, remaining=step.remaining)
