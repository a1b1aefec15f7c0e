"""A bounded fuzz test of every RPC: hostile input is refused by status, never by a crash or a half change.

The methods come from the service descriptors, so a new RPC is fuzzed the day it is
added. Requests are built from each method's request descriptor with hostile values
(NULs, unicode, '/', ':', '..', 1 MiB strings, 64-bit extremes, -1 as unsigned, empty
and nested messages, long lists) or are raw random bytes sent with an identity
serializer. Each call must end in a status that is the caller's (never INTERNAL or
UNKNOWN), within its deadline, and a call that failed must leave the state exactly as
it was: the manager's listings, or the agent's namespace (`ip -j link` / `ip -j addr`),
its saved network configuration and its libvirt listings.

Successful calls may change the state (a valid name reaches a real object); the check
compares only around calls that failed, so the drift of successes does not matter.

The run is reproducible: `VIRTFLEET_FUZZ_SEED` picks the seed (default: a random one,
printed and named in every failure), `VIRTFLEET_FUZZ_EXAMPLES` scales the examples.
"""
from __future__ import annotations

import os
import random
import signal
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import grpc
import pytest
from google.protobuf import descriptor as pb_descriptor
from google.protobuf import message_factory, text_format
from google.protobuf.json_format import MessageToDict, SerializeToJsonError
from hypothesis import HealthCheck, Phase, given, seed, settings
from hypothesis import strategies as st

from tests.fixtures.agent_process import host_pki, start_agent
from tests.fixtures.netns import Namespace, plug_nics
from virtfleet.enroll import make_key_and_csr
from virtfleet.v1 import (admins_pb2, admins_pb2_grpc, agent_pb2, audit_pb2, events_pb2, fleet_pb2, fleet_pb2_grpc,
                          hostnet_pb2, macpool_pb2, macpool_pb2_grpc, pki_pb2, profiles_pb2, profiles_pb2_grpc, vm_pb2,
                          vm_pb2_grpc, vms_pb2, vms_pb2_grpc)

SEED = int(os.environ.get("VIRTFLEET_FUZZ_SEED") or random.SystemRandom().randrange(2**32))
SCALE = float(os.environ.get("VIRTFLEET_FUZZ_EXAMPLES", "1"))
CALL_TIMEOUT_S = 10.0     # a unary call that takes longer is a hang
WATCH_TIMEOUT_S = 0.5     # a watch streams until its caller leaves: a short deadline ends it
REFUSED = {grpc.StatusCode.INTERNAL, grpc.StatusCode.UNKNOWN}

print(f"\nVIRTFLEET_FUZZ_SEED={SEED} (set it to replay this run)", file=sys.stderr)

MANAGER_SERVICES = [(fleet_pb2, "FleetService"), (vms_pb2, "VmService"), (macpool_pb2, "MacPoolService"),
                    (audit_pb2, "AuditService"), (admins_pb2, "AdminService"), (events_pb2, "EventService"),
                    (pki_pb2, "PkiService"), (profiles_pb2, "ProfileService")]
# Not fuzzed, with the reason: FollowEvents follows the trail until its caller leaves (every call would
# wait out its deadline; its filter is ListEvents' and is fuzzed there); RotateCa takes no input and each
# success makes a CA (tests/manager/test_certificate_renewal.py drives it).
NOT_FUZZED = {"/virtfleet.v1.EventService/FollowEvents", "/virtfleet.v1.PkiService/RotateCa"}
AGENT_SERVICES = [(agent_pb2, "AgentService"), (vm_pb2, "VmAgentService")]


# -- the methods, from the descriptors ---------------------------------------------------------


@dataclass(frozen=True)
class Method:
    path: str
    input: pb_descriptor.Descriptor
    streaming: bool     # server streaming: consumed to its end or its deadline

    @property
    def name(self) -> str:
        return self.path.rsplit("/", 1)[1]


def methods(services: list[tuple[Any, str]]) -> list[Method]:
    found = []
    for module, name in services:
        service = module.DESCRIPTOR.services_by_name[name]
        for m in service.methods:
            assert not m.client_streaming, f"{m.full_name}: client streaming is not fuzzed yet; add it here"
            if f"/{service.full_name}/{m.name}" not in NOT_FUZZED:
                found.append(Method(f"/{service.full_name}/{m.name}", m.input_type, m.server_streaming))
    return found


# -- hostile values ----------------------------------------------------------------------------

# Names of the objects each target holds, so some requests reach a real object.
KNOWN = ["host1", "blue", "ovirtmgmt", "Default", "vm1", "nic1", "t1", "s1", "lab", "default", "test", "gold",
         "clean-traffic", "no-mac-spoofing", "IP",
         "eth0", "eth1", "eth2", "bond0", "52:54:00:00:00:01", "02:00:00:00:10:00", "0000:00:03.0",
         "virtio", "static", "dhcp", "192.0.2.1", "1", "start", "migrate"]
HOSTILE = ["", " ", "a b", ".", "..", "../..", "/", "a/b", "x:y", ":", "\x00", "a\x00b", "\t", "\n",
           "é", "☃" * 9, "\U0001f600", "\u202e", "\ufeff", "İ", "ß" * 16, "-1", "0", "4294967295",
           "%s%n", "'; DROP TABLE vms; --", "x" * 15, "x" * 16, "x" * 64, "x" * 1025,
           "x" * (64 * 1024 + 1), "y" * (1 << 20)]
# Known names weigh most: a request whose every field is garbage stops at its first check, and the
# defects live behind the checks a nearly valid request passes.
STRINGS = st.one_of(st.sampled_from(KNOWN), st.sampled_from(KNOWN), st.sampled_from(HOSTILE), st.text(max_size=40))

_T = pb_descriptor.FieldDescriptor
_SIGNED32 = (_T.TYPE_INT32, _T.TYPE_SINT32, _T.TYPE_SFIXED32)
_UNSIGNED32 = (_T.TYPE_UINT32, _T.TYPE_FIXED32)
_SIGNED64 = (_T.TYPE_INT64, _T.TYPE_SINT64, _T.TYPE_SFIXED64)
_UNSIGNED64 = (_T.TYPE_UINT64, _T.TYPE_FIXED64)
_USEFUL = [1, 2, 3, 5, 30, 60, 64, 100, 300, 1400, 1500, 4094, 4095, 9000, 65535, 65536]


def _ints(low: int, high: int) -> st.SearchStrategy[int]:
    edges = [v for v in (low, low + 1, -1, 0, 1, 2**31 - 1, 2**31, 2**32 - 1, 2**63 - 1, high - 1, high)
             if low <= v <= high]
    return st.one_of(st.sampled_from(edges), st.sampled_from([v for v in _USEFUL if v <= high]),
                     st.integers(low, high))


def scalar(field: pb_descriptor.FieldDescriptor) -> st.SearchStrategy[Any]:
    t = field.type
    if t == _T.TYPE_STRING:
        return STRINGS
    if t == _T.TYPE_BYTES:
        return st.one_of(st.binary(max_size=64), st.just(b"\x00" * 70000))
    if t == _T.TYPE_BOOL:
        return st.booleans()
    if t == _T.TYPE_ENUM:
        return st.one_of(st.sampled_from([v.number for v in field.enum_type.values]),
                         st.sampled_from([-1, 99, 2**31 - 1]))  # proto3 enums are open
    if t in _SIGNED32:
        return _ints(-2**31, 2**31 - 1)
    if t in _UNSIGNED32:
        return _ints(0, 2**32 - 1)
    if t in _SIGNED64:
        return _ints(-2**63, 2**63 - 1)
    if t in _UNSIGNED64:
        return _ints(0, 2**64 - 1)
    if t in (_T.TYPE_DOUBLE, _T.TYPE_FLOAT):
        return st.floats(allow_nan=True, width=32 if t == _T.TYPE_FLOAT else 64)
    raise AssertionError(f"{field.full_name}: field type {t} has no strategy; add one")


def _cheap(value: Any) -> bool:
    return len(value) < 100 if isinstance(value, (str, bytes)) else \
        value.ByteSize() < 200 if hasattr(value, "ByteSize") else True


@st.composite
def message(draw: Callable, desc: pb_descriptor.Descriptor, depth: int = 0) -> Any:
    """A message of type `desc` with some of its fields set to hostile values."""
    msg = message_factory.GetMessageClass(desc)()
    if depth > 3:
        return msg
    for field in desc.fields:
        if not draw(st.booleans()):
            continue
        target = getattr(msg, field.name)
        if field.message_type is not None and field.message_type.GetOptions().map_entry:
            key_f, value_f = field.message_type.fields_by_name["key"], field.message_type.fields_by_name["value"]
            for _ in range(draw(st.integers(0, 3))):
                key = draw(scalar(key_f))
                if value_f.message_type is not None:
                    target[key].CopyFrom(draw(message(value_f.message_type, depth + 1)))
                else:
                    target[key] = draw(scalar(value_f))
            continue
        item = message(field.message_type, depth + 1) if field.message_type is not None else scalar(field)
        if field.is_repeated:
            values = draw(st.lists(item, max_size=3))
            if values and _cheap(values[0]) and draw(st.integers(0, 9)) == 0:
                values = values[:1] * 300  # past every list limit
            target.extend(values)
        elif field.message_type is not None:
            target.CopyFrom(draw(item))
        else:
            setattr(msg, field.name, draw(item))
    return msg


_MAX = {**{t: 2**31 - 1 for t in _SIGNED32}, **{t: 2**32 - 1 for t in _UNSIGNED32},
        **{t: 2**63 - 1 for t in _SIGNED64}, **{t: 2**64 - 1 for t in _UNSIGNED64}}


def uniform(desc: pb_descriptor.Descriptor, value: Callable[[pb_descriptor.FieldDescriptor], Any],
            depth: int = 0) -> Any:
    """A message with every field (nested ones too, one item per list) set by `value`, None to leave it."""
    msg = message_factory.GetMessageClass(desc)()
    for field in desc.fields:
        if field.message_type is not None:
            if field.message_type.GetOptions().map_entry or depth >= 2:
                continue
            sub = uniform(field.message_type, value, depth + 1)
            getattr(msg, field.name).add().CopyFrom(sub) if field.is_repeated else getattr(msg, field.name).CopyFrom(sub)
            continue
        v = value(field)
        if v is not None:
            getattr(msg, field.name).append(v) if field.is_repeated else setattr(msg, field.name, v)
    return msg


def every_field(m: Method) -> list[tuple[bytes, str]]:
    """The classes of hostile input found before, each in every field of the request at once."""
    text = lambda bad: lambda f: bad if f.type == _T.TYPE_STRING else None  # noqa: E731
    found = []
    for how, value in (("every string with a NUL", text("a\x00b")),
                       ("every string past 64 KiB", text("x" * (64 * 1024 + 1))),
                       ("every known name", text("vm1")),
                       ("every integer at its maximum", lambda f: _MAX.get(f.type)),
                       ("every signed integer at its minimum",
                        lambda f: -_MAX[f.type] - 1 if f.type in _SIGNED32 + _SIGNED64 else None)):
        found.append((uniform(m.input, value).SerializeToString(), how))
    return found


def requests(candidates: list[Method]) -> st.SearchStrategy[tuple[Method, bytes, str]]:
    """(method, the request's bytes, how they were made): a built message, an empty one, or random bytes."""
    def for_method(m: Method) -> st.SearchStrategy[tuple[Method, bytes, str]]:
        empty = message_factory.GetMessageClass(m.input)()
        return st.one_of(
            message(m.input).map(lambda msg: (m, msg.SerializeToString(), _describe(msg))),
            st.just((m, empty.SerializeToString(), "empty message")),
            st.binary(min_size=1, max_size=256).map(lambda b: (m, b, f"raw bytes {b[:64]!r}")),
        )
    return st.sampled_from(candidates).flatmap(for_method)


def _describe(msg: Any) -> str:
    try:
        text = repr(MessageToDict(msg, preserving_proto_field_name=True))
    except SerializeToJsonError:      # a value JSON cannot show (a Timestamp before year 1): the text form
        text = text_format.MessageToString(msg, as_one_line=True)
    return text if len(text) < 600 else text[:600] + "…"


# -- calling -----------------------------------------------------------------------------------


@dataclass
class Outcome:
    code: grpc.StatusCode
    details: str
    reply: bytes = b""


def call(channel: grpc.Channel, method: Method, data: bytes, timeout: float) -> Outcome:
    """The call with the bytes as they are (identity serializers), consumed to its end."""
    try:
        if method.streaming:
            for _ in channel.unary_stream(method.path)(data, timeout=timeout):
                pass
        else:
            return Outcome(grpc.StatusCode.OK, "", channel.unary_unary(method.path)(data, timeout=timeout))
    except grpc.RpcError as err:
        return Outcome(err.code(), err.details() or "")
    return Outcome(grpc.StatusCode.OK, "")


def _waits_on_purpose(method: Method, data: bytes) -> bool:
    """A deadline this request asks for: a watch streams until its caller leaves; a valid stop or
    connectivity wait longer than the call's deadline ends with the client's DEADLINE_EXCEEDED."""
    if method.streaming and method.name.startswith("Watch"):
        return True
    try:
        msg = message_factory.GetMessageClass(method.input).FromString(data)
    except Exception:  # noqa: BLE001 - garbage asks for nothing
        return False
    return any(f.name.endswith("timeout_s") and v >= CALL_TIMEOUT_S for f, v in msg.ListFields())


SEEN: dict[str, int] = {}  # status → calls, printed after each run to show what the fuzzing reached


def check_call(channel: grpc.Channel, method: Method, data: bytes, how: str,
               state: Callable[[], Any], alive: Callable[[], None] = lambda: None) -> Outcome:
    before = state()
    timeout = WATCH_TIMEOUT_S if method.streaming and method.name.startswith("Watch") else CALL_TIMEOUT_S
    outcome = call(channel, method, data, timeout)
    key = outcome.code.name if outcome.code != grpc.StatusCode.DEADLINE_EXCEEDED else f"DEADLINE_EXCEEDED:{method.name}"
    SEEN[key] = SEEN.get(key, 0) + 1
    alive()
    where = f"{method.path} with {how} (VIRTFLEET_FUZZ_SEED={SEED})"
    assert outcome.code not in REFUSED, f"{where}: {outcome.code.name}: {outcome.details}"
    if outcome.code == grpc.StatusCode.DEADLINE_EXCEEDED:
        assert _waits_on_purpose(method, data), f"{where}: hung until the client's deadline ({timeout} s)"
    if outcome.code == grpc.StatusCode.RESOURCE_EXHAUSTED:
        assert "Stream removed" not in outcome.details, f"{where}: the status did not fit its trailer"
    if outcome.code not in (grpc.StatusCode.OK, grpc.StatusCode.DEADLINE_EXCEEDED) or \
            (outcome.code == grpc.StatusCode.DEADLINE_EXCEEDED and not method.streaming):
        after = state()
        assert after == before, f"{where}: failed with {outcome.code.name} ({outcome.details}) but changed the state"
    return outcome


def fuzz(candidates: list[Method], examples: int, run: Callable[[Method, bytes, str], None]) -> None:
    @seed(SEED)
    @settings(max_examples=max(1, int(examples * SCALE)), deadline=None, database=None,
              phases=(Phase.explicit, Phase.generate, Phase.shrink),
              suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large,
                                     HealthCheck.large_base_example, HealthCheck.filter_too_much])
    @given(requests(candidates))
    def examples_of(request: tuple[Method, bytes, str]) -> None:
        run(*request)

    SEEN.clear()
    # Every method with an empty request, garbage, and each known class of hostile value in every
    # field at once, whatever the draws pick.
    for m in candidates:
        run(m, b"", "empty message")
        run(m, b"\xff\xff\xff", "raw bytes b'\\xff\\xff\\xff'")
        for data, how in every_field(m):
            run(m, data, how)
    examples_of()
    print(f"statuses (VIRTFLEET_FUZZ_SEED={SEED}): {dict(sorted(SEEN.items()))}", file=sys.stderr)


# -- the manager -------------------------------------------------------------------------------

_VOLATILE = {"status", "last_report_at", "enrolled_at", "created_at", "updated_at"}


def _stable(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _stable(v) for k, v in value.items() if k not in _VOLATILE}
    if isinstance(value, list):
        return [_stable(v) for v in value]
    return value


def manager_state(channel: grpc.Channel) -> dict[str, Any]:
    """Everything the manager lists: hosts, networks, VMs, templates, snapshots, MAC pools, admins."""
    fleet, vms = fleet_pb2_grpc.FleetServiceStub(channel), vms_pb2_grpc.VmServiceStub(channel)
    pools = macpool_pb2_grpc.MacPoolServiceStub(channel)
    listings = {
        "hosts": fleet.ListHosts(fleet_pb2.ListHostsRequest(), timeout=CALL_TIMEOUT_S),
        "networks": fleet.ListNetworks(fleet_pb2.ListNetworksRequest(), timeout=CALL_TIMEOUT_S),
        "vms": vms.ListVirtualMachines(vms_pb2.ListVirtualMachinesRequest(), timeout=CALL_TIMEOUT_S),
        "templates": vms.ListTemplates(vms_pb2.ListTemplatesRequest(), timeout=CALL_TIMEOUT_S),
        "snapshots": vms.ListSnapshots(vms_pb2.ListSnapshotsRequest(), timeout=CALL_TIMEOUT_S),
        "pools": pools.ListMacPools(macpool_pb2.ListMacPoolsRequest(), timeout=CALL_TIMEOUT_S),
        "admins": admins_pb2_grpc.AdminServiceStub(channel).ListAdmins(admins_pb2.ListAdminsRequest(),
                                                                        timeout=CALL_TIMEOUT_S),
        "profiles": profiles_pb2_grpc.ProfileServiceStub(channel).ListVnicProfiles(
            profiles_pb2.ListVnicProfilesRequest(), timeout=CALL_TIMEOUT_S),
    }
    return {k: _stable(MessageToDict(v, preserving_proto_field_name=True)) for k, v in listings.items()}


def seed_manager(channel: grpc.Channel, state_dir: Path) -> None:
    """One of each object, named as KNOWN names them, so valid-looking names reach real rows.

    The host's agent is a unix socket nobody serves: calls that go to it fail UNAVAILABLE
    at once, and nothing is ever sent beyond this machine.
    """
    fleet, vms = fleet_pb2_grpc.FleetServiceStub(channel), vms_pb2_grpc.VmServiceStub(channel)
    _, csr = make_key_and_csr("host1")
    fleet.EnrollHost(fleet_pb2.EnrollHostRequest(name="host1", address="192.0.2.11", csr_pem=csr,
                                                 endpoint=f"unix://{state_dir / 'no-agent.sock'}"), timeout=10)
    fleet.CreateNetwork(fleet_pb2.CreateNetworkRequest(network=fleet_pb2.LogicalNetwork(name="blue", vlan=10)),
                        timeout=10)
    profiles_pb2_grpc.ProfileServiceStub(channel).CreateVnicProfile(profiles_pb2.CreateVnicProfileRequest(
        profile=profiles_pb2.VnicProfile(name="gold", network="blue", qos=vm_pb2.Bandwidth(
            inbound=vm_pb2.BandwidthLimit(average=1000)))), timeout=10)
    fleet.LabelNetwork(fleet_pb2.LabelNetworkRequest(network="blue", label="lab"), timeout=10)   # Unlabel* reach a row
    vms.CreateVirtualMachine(vms_pb2.CreateVirtualMachineRequest(
        name="vm1", nics=[vms_pb2.Nic(name="nic1", network="ovirtmgmt")]), timeout=10)
    vms.CreateTemplate(vms_pb2.CreateTemplateRequest(name="t1", from_vm="vm1"), timeout=10)
    vms.CreateSnapshot(vms_pb2.CreateSnapshotRequest(vm="vm1", name="s1"), timeout=10)
    macpool_pb2_grpc.MacPoolServiceStub(channel).CreateMacPool(macpool_pb2.CreateMacPoolRequest(
        pool=macpool_pb2.MacPool(name="lab", ranges=[macpool_pb2.MacRange(first="02:00:00:00:10:00", count=16)])),
        timeout=10)


def test_every_manager_rpc_refuses_hostile_input_by_status_and_changes_nothing(manager, tmp_path: Path) -> None:
    seed_manager(manager.channel, tmp_path)
    candidates = methods(MANAGER_SERVICES)
    fuzz(candidates, 300, lambda m, data, how: check_call(manager.channel, m, data, how,
                                                          lambda: manager_state(manager.channel)))


# -- the agent ---------------------------------------------------------------------------------

_KERNEL_FLAGS = {"LOWER_UP", "NO-CARRIER", "M-DOWN", "DORMANT"}  # the kernel's, settling after a change


def host_state(ns: Namespace) -> dict[str, Any]:
    """The namespace's links and addresses without counters, timers or what the kernel settles by itself."""
    links = {}
    for link in ns.ip_json("-d", "link", "show"):
        links[link["ifname"]] = (link.get("linkinfo", {}).get("info_kind", ""), link.get("master", ""),
                                 link.get("mtu"), link.get("address", ""),
                                 sorted(set(link.get("flags", [])) - _KERNEL_FLAGS))
    addrs = {link["ifname"]: sorted((a.get("family"), a.get("local"), a.get("prefixlen"))
                                    for a in link.get("addr_info", [])
                                    if not str(a.get("local", "")).startswith("fe80:"))
             for link in ns.ip_json("addr", "show")}
    return {"links": links, "addrs": addrs}


class FuzzAgent:
    """The real agent process in a lab host's namespace (NICs eth0..eth2), VMs on libvirt's test driver."""

    def __init__(self, ns: Namespace, root: Path) -> None:
        self.ns, self.root = ns, root
        manager = host_pki(root)
        self.sock = root / "agent.sock"
        self.proc = start_agent(ns.name, self.sock, root / "agent", root / "state",
                                args=["--libvirt-uri", "test:///default"])
        self.channel = grpc.secure_channel(f"unix://{self.sock}", manager.channel_credentials(),
                                           options=[("grpc.ssl_target_name_override", "host1")])

    def alive(self) -> None:
        assert self.proc.poll() is None, f"the agent died (VIRTFLEET_FUZZ_SEED={SEED}): " \
                                         f"{self.proc.stderr.read().decode()[-3000:]}"  # type: ignore[union-attr]

    def state(self) -> dict[str, Any]:
        vms = vm_pb2_grpc.VmAgentServiceStub(self.channel)
        config = self.channel.unary_unary("/virtfleet.v1.AgentService/GetNetworkConfig")(
            hostnet_pb2.GetNetworkConfigRequest().SerializeToString(), timeout=CALL_TIMEOUT_S)
        return {
            **host_state(self.ns),
            "config": config,
            "vms": sorted((v.name, v.state, v.persistent, tuple(n.name for n in v.nics))
                          for v in vms.ListVms(vm_pb2.ListVmsRequest(), timeout=CALL_TIMEOUT_S).vms),
            "networks": sorted((n.network.name, n.active) for n in vms.ListVirtualNetworks(
                vm_pb2.ListVirtualNetworksRequest(), timeout=CALL_TIMEOUT_S).networks),
        }

    def close(self) -> None:
        self.channel.close()
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait(timeout=20)


@pytest.fixture
def fuzz_agent(netns_factory: Callable[[], Namespace], tmp_path: Path) -> Iterator[FuzzAgent]:
    if os.geteuid() != 0:
        pytest.skip("the agent runs in a network namespace (root)")
    pytest.importorskip("libvirt", reason="libvirt-python is not installed")
    ns = netns_factory()
    plug_nics(ns, netns_factory(), 3)
    agent = FuzzAgent(ns, tmp_path)
    try:
        yield agent
    finally:
        agent.close()


def test_every_agent_rpc_refuses_hostile_input_by_status_and_changes_nothing(fuzz_agent: FuzzAgent) -> None:
    candidates = methods(AGENT_SERVICES)

    def run(m: Method, data: bytes, how: str) -> None:
        outcome = check_call(fuzz_agent.channel, m, data, how, fuzz_agent.state, fuzz_agent.alive)
        if m.name == "SetupNetworks":
            _commit_pending(fuzz_agent, outcome)

    fuzz(candidates, 200, run)


def _commit_pending(agent: FuzzAgent, outcome: Outcome) -> None:
    """A two-phase change that succeeded rolls itself back when its wait ends, under a later call's
    check: committing it at once keeps the state still between calls."""
    if outcome.code != grpc.StatusCode.OK or not outcome.reply:
        return
    change_id = hostnet_pb2.SetupNetworksResponse.FromString(outcome.reply).change_id
    if change_id:
        agent.channel.unary_unary("/virtfleet.v1.AgentService/CommitNetworks")(
            hostnet_pb2.CommitNetworksRequest(change_id=change_id).SerializeToString(), timeout=CALL_TIMEOUT_S)
