"""`virtfleet vm …`, `virtfleet template …`, `virtfleet snapshot …`."""
from __future__ import annotations

import sys

import click
import grpc
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from virtfleet.v1 import vm_pb2, vms_pb2, vms_pb2_grpc

from .output import OUTPUT_OPTION, as_dict, console, print_fields, print_json, print_table, when

_MODES = {"vepa": vm_pb2.DIRECT_MODE_VEPA, "bridge": vm_pb2.DIRECT_MODE_BRIDGE,
          "private": vm_pb2.DIRECT_MODE_PRIVATE, "passthrough": vm_pb2.DIRECT_MODE_PASSTHROUGH}
_MODE_NAMES = {v: k for k, v in _MODES.items()}
RULE_TEXT = {
    vms_pb2.NIC_RULE_PCI_ORDER: "ordered by PCI address, MACs assigned in that order",
    vms_pb2.NIC_RULE_NAME_ORDER: "no PCI addresses: ordered by vNIC name, MACs assigned in that order",
    vms_pb2.NIC_RULE_SNAPSHOT_NEW_MACS: "snapshot without PCI addresses: new MACs, ordered by vNIC name",
}
# What `vm check-order` can say when a VM is in order: exactly what its rule guarantees, no more.
GUARANTEE_TEXT = {
    vms_pb2.NIC_RULE_PCI_ORDER: "the source's PCI addresses are kept and MACs ascend in PCI order: the guest "
                                "names its NICs as the source's guest did",
    vms_pb2.NIC_RULE_NAME_ORDER: "the template has no PCI addresses: vNICs in name order with MACs ascending; "
                                 "libvirt gives PCI slots in that order at the first boot, so the guest's NICs "
                                 "follow the vNIC names",
    vms_pb2.NIC_RULE_SNAPSHOT_NEW_MACS: "the snapshot was taken before its VM's first boot (no PCI addresses): new "
                                        "MACs, ascending in vNIC name order, PCI slots given in that order at the "
                                        "first boot; the snapshotted VM's own order (`snapshot show`) is not kept",
}
NIC_HELP = ("NAME=TARGET[,opt=value…]; TARGET: a logical network, virtual:NETWORK (libvirt virtual network) or "
            "direct:HOSTNIC (macvtap); options mac=, pci=, model=, mode=vepa|bridge|private|passthrough, "
            "network= (direct: the logical network whose VLAN it carries), qbg=MANAGERID/TYPEID/VERSION[/INSTANCE], "
            "qbh=PROFILE, profile= (a vNIC profile of the network; default: the network's own), link=down")


DOMAIN_TYPES = ("kvm", "qemu", "auto")


def _stub(ctx: click.Context) -> vms_pb2_grpc.VmServiceStub:
    return ctx.obj.vms()


def boot_options(fn):
    """--kernel/--initrd/--cmdline | --disk | --guest, and --domain-type: `vm create` and `template create`."""
    for option in reversed((
        click.option("--kernel", default="", metavar="PATH", help="boot this kernel directly (a path on the host)"),
        click.option("--initrd", default="", metavar="PATH", help="with --kernel: its initramfs (a path on the host)"),
        click.option("--cmdline", default="", metavar="TEXT",
                     help="with --kernel: the kernel's command line; with --guest: appended to the test guest's"),
        click.option("--disk", default="", metavar="PATH", help="boot a qcow2 or raw image on the host (virtio-blk)"),
        click.option("--guest", "test_guest", is_flag=True,
                     help="boot the test guest (Debian kernel, busybox, qemu-guest-agent), cached by the agent"),
        click.option("--domain-type", default="", type=click.Choice(("", *DOMAIN_TYPES)), metavar="kvm|qemu|auto",
                     help="the hypervisor: kvm, qemu (TCG) or auto (TCG where KVM is paravirtual or absent); "
                          "default: the source's, else auto"),
    )):
        fn = option(fn)
    return fn


def boot_source(kernel: str, initrd: str, cmdline: str, disk: str, test_guest: bool) -> vm_pb2.BootSource | None:
    """The options as the request's BootSource; None when none was given (the source's, else diskless).

    Combinations (two sources, an initrd without a kernel) are the manager's to refuse, naming the field.
    """
    if not (kernel or initrd or cmdline or disk or test_guest):
        return None
    return vm_pb2.BootSource(kernel=kernel, initrd=initrd, cmdline=cmdline, disk=disk, test_guest=test_guest)


def boot_text(boot: vm_pb2.BootSource, has_boot: bool) -> str:
    """How it boots, in one line."""
    if not has_boot or not (boot.kernel or boot.disk or boot.test_guest):
        return "diskless"
    if boot.kernel:
        text = f"kernel {boot.kernel}" + (f", initrd {boot.initrd}" if boot.initrd else "")
    elif boot.disk:
        text = f"disk {boot.disk}"
    else:
        text = "test guest"
    return text + (f", cmdline {boot.cmdline!r}" if boot.cmdline else "")


# -- parsing what admins type (pure) ------------------------------------------------------------


def parse_nic(text: str) -> vms_pb2.Nic:
    """`nic1=ovirtmgmt`, `nic2=virtual:default,mac=56:6f:…`, `nic3=direct:eth1,mode=bridge,qbh=prof`."""
    head, *opts = text.split(",")
    name, eq, target = head.partition("=")
    if not eq or not name or not target:
        raise click.BadParameter(f"{text!r}: expected NAME=TARGET[,options]", param_hint="--nic")
    nic = vms_pb2.Nic(name=name)
    kind, colon, value = target.partition(":")
    if colon and kind == "virtual":
        nic.virtual_network = value
    elif colon and kind == "direct":
        nic.direct_nic = value
    elif colon:
        raise click.BadParameter(f"{target!r}: TARGET is NETWORK, virtual:NAME or direct:HOSTNIC", param_hint="--nic")
    else:
        nic.network = target
    for opt in filter(None, (o.strip() for o in opts)):
        key, eq, val = opt.partition("=")
        if not eq or not val:
            raise click.BadParameter(f"{opt!r}: expected OPTION=VALUE", param_hint="--nic")
        if key == "mac":
            nic.mac = val
        elif key == "pci":
            nic.pci_address = val
        elif key == "model":
            nic.model = val
        elif key == "network" and nic.direct_nic:
            nic.network = val
        elif key == "mode" and val in _MODES:
            nic.mode = _MODES[val]
        elif key == "qbh":
            nic.qbh.profileid = val
        elif key == "profile":
            nic.profile = val
        elif key == "link" and val in ("up", "down"):
            nic.link_down = val == "down"
        elif key == "qbg":
            parts = val.split("/")
            if len(parts) not in (3, 4) or not all(p.isdigit() for p in parts[:3]):
                raise click.BadParameter(f"{opt!r}: qbg=MANAGERID/TYPEID/VERSION[/INSTANCEID]", param_hint="--nic")
            nic.qbg.managerid, nic.qbg.typeid, nic.qbg.typeidversion = (int(p) for p in parts[:3])
            nic.qbg.instanceid = parts[3] if len(parts) == 4 else ""
        else:
            raise click.BadParameter(f"{opt!r}: unknown option; {NIC_HELP}", param_hint="--nic")
    return nic


def nic_target(n: vms_pb2.Nic) -> str:
    if n.direct_nic:
        mode = _MODE_NAMES.get(n.mode, "vepa")
        extra = f" vlan of {n.network}" if n.network else ""
        vp = (f" 802.1Qbg {n.qbg.managerid}/{n.qbg.typeid}/{n.qbg.typeidversion}" if n.HasField("qbg")
              else f" 802.1Qbh {n.qbh.profileid}" if n.HasField("qbh") else "")
        return f"direct:{n.direct_nic} ({mode}){extra}{vp}"
    if n.virtual_network:
        return f"virtual:{n.virtual_network}"
    return n.network


def profile_text(n: vms_pb2.Nic) -> str:
    """The profile, and whether the running guest has its current settings."""
    if not n.profile:
        return "-"
    return n.profile + (" (out of sync: vm nic sync)" if n.profile_out_of_sync else "")


def _print_nics(nics, *, title: str | None = None, macs: bool = True, guest: bool = True) -> None:
    """MACs and PCI addresses are what the admin compares: never wrapped or cut. GUEST NAME is what the
    guest calls the NIC (its guest agent; for a template or snapshot, its source VM's guest)."""
    table = Table(title=title, show_edge=False, header_style="bold")
    for col in ("#", "NIC", *(["MAC"] if macs else []), "PCI ADDRESS", "HOST DEVICE",
                *(["GUEST NAME"] if guest else [])):
        table.add_column(col, no_wrap=True)
    table.add_column("ATTACHED TO")
    table.add_column("PROFILE")
    table.add_column("LINK")
    table.add_column("MODEL")
    if guest:
        table.add_column("GUEST IPS")
    for i, n in enumerate(nics):
        name = f"{n.name} (unplugging)" if n.unplugging else n.name
        table.add_row(str(i), name, *([n.mac] if macs else []), n.pci_address or "-", n.host_device or "-",
                      *([n.guest_name or "-"] if guest else []), nic_target(n), profile_text(n),
                      "down" if n.link_down else "up", n.model, *([", ".join(n.guest_ips) or "-"] if guest else []))
    console().print(table)


def rule_text(rule: int) -> str:
    """The seed-004 branch in words (the contract sends the NicRule enum)."""
    return RULE_TEXT.get(rule, "-")


def _print_vm(vm: vms_pb2.VirtualMachine) -> None:
    source = f"{vm.source_kind} {vm.source_name}" if vm.source_kind else "-"
    print_fields([("name", vm.name), ("cluster", vm.cluster), ("state", vm.state), ("host", vm.host or "-"),
                  ("memory", f"{vm.memory_mib} MiB"), ("vcpus", vm.vcpus), ("source", source),
                  ("boot", boot_text(vm.boot, vm.HasField("boot"))), ("domain type", vm.domain_type or "auto"),
                  ("vNIC order", rule_text(vm.nic_rule)), ("first boot", when(vm.first_boot_at)),
                  *([("migrating to", vm.migrating_to)] if vm.migrating_to else [])])
    _print_nics(vm.nics, title="vNICs in guest order")


# -- vm ------------------------------------------------------------------------------------------


@click.group("vm")
def vm_group() -> None:
    """Virtual machines and their vNICs."""


@vm_group.command("create")
@click.argument("name")
@click.option("--cluster", default="", help="default: Default")
@click.option("--template", default="", help="make it from this template")
@click.option("--snapshot", default="", help="make it from this snapshot")
@click.option("--nic", "nics", multiple=True, metavar="SPEC", help=f"a vNIC (without template/snapshot): {NIC_HELP}")
@click.option("--memory", type=click.IntRange(min=0), default=0, help="MiB (default: the source's, else 64)")
@click.option("--vcpus", type=click.IntRange(min=0), default=0, help="default: the source's, else 1")
@click.option("--count", type=click.IntRange(min=1), default=1, show_default=True,
              help="make NAME-1 … NAME-N from the template or snapshot")
@click.option("--batch-size", type=click.IntRange(min=0), default=0, help="VMs per transaction (default 100)")
@click.option("--start", is_flag=True, help="start it (them: spread over the cluster's hosts)")
@click.option("--host", default="", help="with --start and one VM: run it there")
@click.option("--resume", is_flag=True, help="with --count: continue a run that was cut off (the VMs it made are kept)")
@boot_options
@OUTPUT_OPTION
@click.pass_context
def vm_create(ctx, name, cluster, template, snapshot, nics, memory, vcpus, count, batch_size, start, host, resume,
              kernel, initrd, cmdline, disk, test_guest, domain_type, output):
    """Create VM NAME, directly with --nic, or from --template/--snapshot (seed 004's vNIC order).

    It boots as --kernel/--initrd/--cmdline, --disk or --guest say, else as its source does, else
    diskless; --domain-type likewise."""
    boot = boot_source(kernel, initrd, cmdline, disk, test_guest)
    if count > 1 or resume:
        if boot is not None or domain_type:
            raise click.UsageError("with --count, the VMs boot as their template or snapshot does: leave out "
                                   "--kernel/--initrd/--cmdline/--disk/--guest/--domain-type")
        _create_many(ctx, name, cluster, template, snapshot, count, batch_size, start, resume, output)
        return
    vm = _stub(ctx).CreateVirtualMachine(vms_pb2.CreateVirtualMachineRequest(
        name=name, cluster=cluster, template=template, snapshot=snapshot, memory_mib=memory, vcpus=vcpus,
        nics=[parse_nic(n) for n in nics], start=start, host=host, boot=boot, domain_type=domain_type),
        timeout=120)
    if output == "json":
        print_json(as_dict(vm))
        return
    click.echo(f"created VM {vm.name}" + (f", running on {vm.host}" if vm.state == "up" else ""))
    _print_vm(vm)


# How a stream ends when the manager went away or the connection broke (not a refusal of the request).
_CUT_OFF = {grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.UNKNOWN, grpc.StatusCode.CANCELLED,
            grpc.StatusCode.DEADLINE_EXCEEDED, grpc.StatusCode.INTERNAL}


def resume_hint(argv: list[str], name: str, count: int, last: vms_pb2.CreateVirtualMachinesProgress,
                start: bool) -> str:
    """What a cut-off bulk create made, and the command that continues it (pure: tested offline).

    Each batch commits whole, and a batch's progress is sent only after its commit: the
    VMs reported exist, complete with vNICs and MACs. A batch committed just before the
    cut may not have been reported yet, so more may exist; `--resume` counts them.
    """
    made = (f"{last.created} of {count} VMs were created ({name}-1 … {name}-{last.created}, each complete)"
            if last.created else f"no VM of the {count} was reported created")
    started = f", {last.started} started" if start else ""
    again = " ".join(a for a in argv if a != "--resume") + " --resume"
    return (f"{made}{started}; the batches are committed whole, so no VM is half made, and a batch committed "
            f"just before the cut may exist unreported (`virtfleet vm list`). To continue, run:\n  {again}\n"
            "(it keeps the VMs this run made and creates the rest)")


def _create_many(ctx, name, cluster, template, snapshot, count, batch_size, start, resume, output) -> None:
    request = vms_pb2.CreateVirtualMachinesRequest(name=name, count=count, cluster=cluster, template=template,
                                                   snapshot=snapshot, batch_size=batch_size, start=start,
                                                   resume=resume)
    stream = _stub(ctx).CreateVirtualMachines(request, timeout=3600)
    last = vms_pb2.CreateVirtualMachinesProgress(total=count)
    try:
        if output == "json":
            for last in stream:
                pass
            print_json(as_dict(last))
            return
        columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn())
        with Progress(*columns, transient=False) as bar:
            created = bar.add_task("created", total=count)
            started = bar.add_task("started", total=count, visible=start)
            for last in stream:
                bar.update(created, completed=last.created)
                bar.update(started, completed=last.started)
    except grpc.RpcError as exc:
        if last.created or exc.code() in _CUT_OFF:
            click.echo(resume_hint(["virtfleet", *sys.argv[1:]], name, count, last, start), err=True)
        raise
    click.echo(f"created {last.created} VMs {name}-1 … {name}-{count}" +
               (f", started {last.started}" if start else "") + (f"; vNICs {rule_text(last.rule)}" if last.rule else ""))


@vm_group.command("list")
@OUTPUT_OPTION
@click.pass_context
def vm_list(ctx, output):
    """All VMs."""
    vms = _stub(ctx).ListVirtualMachines(vms_pb2.ListVirtualMachinesRequest(), timeout=60).vms
    if output == "json":
        print_json([as_dict(v) for v in vms])
        return
    print_table(["NAME", "CLUSTER", "STATE", "HOST", "VNICS", "SOURCE"],
                [(v.name, v.cluster, v.state, v.host or "-", len(v.nics),
                  f"{v.source_kind} {v.source_name}" if v.source_kind else "-") for v in vms])


@vm_group.command("show")
@click.argument("name")
@OUTPUT_OPTION
@click.pass_context
def vm_show(ctx, name, output):
    """One VM with its vNICs in guest order."""
    vm = _stub(ctx).GetVirtualMachine(vms_pb2.GetVirtualMachineRequest(name=name), timeout=30)
    if output == "json":
        print_json(as_dict(vm))
    else:
        _print_vm(vm)


@vm_group.command("start")
@click.argument("name")
@click.option("--host", default="", help="default: the scheduler's choice (`--explain` shows why)")
@click.option("--paused", is_flag=True, help="start with its vCPUs paused")
@click.option("--explain", is_flag=True, help="start nothing: show each host of its cluster, accepted or refused "
                                             "with every reason, and the one a start would choose")
@OUTPUT_OPTION
@click.pass_context
def vm_start(ctx, name, host, paused, explain, output):
    """Run VM NAME; its first boot records the PCI addresses libvirt gives its vNICs."""
    if explain:
        _explain(ctx, name, "start", output)
        return
    vm = _stub(ctx).StartVirtualMachine(vms_pb2.StartVirtualMachineRequest(name=name, host=host, paused=paused),
                                        timeout=180)
    if output == "json":
        print_json(as_dict(vm))
        return
    click.echo(f"VM {vm.name} is up on {vm.host}")
    _print_nics(vm.nics, title="vNICs in guest order")


@vm_group.command("placement")
@click.argument("name")
@click.option("--purpose", type=click.Choice(["start", "migrate"]), default="start", show_default=True,
              help="migrate: where the running VM could move (never the host it runs on)")
@OUTPUT_OPTION
@click.pass_context
def vm_placement(ctx, name, purpose, output):
    """Where the scheduler would put VM NAME: each host accepted (best first, with its weights) or refused
    with every reason. Changes nothing."""
    _explain(ctx, name, purpose, output)


def _explain(ctx: click.Context, name: str, purpose: str, output: str) -> None:
    e = _stub(ctx).ExplainPlacement(vms_pb2.ExplainPlacementRequest(vm=name, purpose=purpose), timeout=30)
    if output == "json":
        print_json(as_dict(e))
        return
    print_table(["HOST", "VERDICT", "SCORE", "FREE MIB", "VMS", "REASONS"], placement_rows(e),
                title=f"placement of VM {e.vm} ({purpose})")
    click.echo(f"chosen: {e.chosen}" if e.chosen else "chosen: none (no host accepts the VM)")


def placement_rows(e: vms_pb2.PlacementExplanation) -> list[tuple]:
    """One row per host; an accepted host's reasons are what could not be checked on it (shown as notes)."""
    rows = []
    for v in e.hosts:
        reasons = "; ".join(v.reasons)
        if v.accepted:
            rows.append((v.host, "accepted", f"{v.score:.2f}", v.free_memory_mib if v.free_memory_mib else "?",
                         v.vm_count, f"notes: {reasons}" if reasons else ""))
        else:
            rows.append((v.host, "refused", "-", "-", v.vm_count, reasons))
    return rows


@vm_group.command("stop")
@click.argument("name")
@click.option("--force", is_flag=True, help="pull the plug instead of asking the guest to shut down")
@click.option("--timeout", type=click.IntRange(min=0), default=0,
              help="seconds the guest gets to shut down before it is destroyed (default 60)")
@OUTPUT_OPTION
@click.pass_context
def vm_stop(ctx, name, force, timeout, output):
    """Stop VM NAME (ACPI shutdown, destroyed if it has not stopped in time)."""
    vm = _stub(ctx).StopVirtualMachine(vms_pb2.StopVirtualMachineRequest(name=name, force=force, timeout_s=timeout),
                                       timeout=120 + (timeout or 60))
    if output == "json":
        print_json(as_dict(vm))
    else:
        click.echo(f"VM {name} is down")


def _mib(n: int) -> str:
    return f"{n / (1 << 20):.1f} MiB"


def progress_line(p: vms_pb2.MigrationProgress) -> str:
    """One migration progress message as a plain line (piped output, logs)."""
    if p.done:
        return f"VM {p.vm} migrated from {p.source} to {p.destination} (downtime {p.downtime_ms} ms)"
    if not p.data_total:   # libvirt has not begun copying: the destination's QEMU is being started
        return (f"{p.vm} {p.source} → {p.destination}: preparing the destination, "
                f"{p.time_elapsed_ms / 1000:.1f} s")
    done = f"{100 * p.data_processed // p.data_total}%"
    phase = f", {p.phase}" if p.phase else ""
    return (f"{p.vm} {p.source} → {p.destination}: {done}, {_mib(p.data_remaining)} remaining, dirty rate "
            f"{p.dirty_rate} pages/s, expected downtime {p.expected_downtime_ms} ms, {p.time_elapsed_ms / 1000:.1f} s"
            f"{phase}")


@vm_group.command("migrate")
@click.argument("name")
@click.option("--to", default="", help="the destination host (default: placement chooses)")
@click.option("--max-downtime", type=click.IntRange(min=1, max=60_000), default=None, metavar="MS",
              help="the longest pause allowed at the switch-over, 1-60000 (default: libvirt's)")
@click.option("--bandwidth", type=click.IntRange(min=1, max=100_000), default=None, metavar="MIB_S",
              help="1-100000 (default: unlimited)")
@click.option("--auto-converge", is_flag=True, help="throttle the guest's vCPUs until the copy converges")
@click.option("--post-copy", is_flag=True, help="switch over after the first pass and fetch the rest on demand")
@click.option("--timeout", type=click.IntRange(min=1, max=86_400), default=None, metavar="S",
              help="abort after this long, 1-86400 (default: the manager's migration_timeout_s)")
@click.option("--cancel", is_flag=True, help="cancel the VM's running migration instead")
@OUTPUT_OPTION
@click.pass_context
def vm_migrate(ctx, name, to, max_downtime, bandwidth, auto_converge, post_copy, timeout, cancel, output):
    """Live-migrate running VM NAME to another host; its MACs, PCI addresses and vNIC order stay."""
    if auto_converge and post_copy:
        raise click.UsageError("--auto-converge and --post-copy exclude each other")
    stub = _stub(ctx)
    if cancel:
        vm = stub.CancelMigration(vms_pb2.CancelMigrationRequest(name=name), timeout=120)
        if output == "json":
            print_json(as_dict(vm))
        else:
            click.echo(f"migration of VM {name} cancelled; it runs on {vm.host or '-'}")
        return
    request = vms_pb2.MigrateVirtualMachineRequest(name=name, to=to, max_downtime_ms=max_downtime or 0,
                                                   bandwidth_mib_s=bandwidth or 0, auto_converge=auto_converge,
                                                   post_copy=post_copy, timeout_s=timeout or 0)
    stream = stub.MigrateVirtualMachine(request, timeout=(timeout or 86_400) + 300)
    last = None
    if output == "json":
        for last in stream:
            pass
    elif sys.stdout.isatty():
        last = _migrate_with_bar(stream)
    else:
        for last in stream:
            click.echo(progress_line(last))
    if output == "json":
        print_json(as_dict(stub.GetVirtualMachine(vms_pb2.GetVirtualMachineRequest(name=name), timeout=30)))
    elif last is not None and sys.stdout.isatty():
        click.echo(progress_line(last))


def _migrate_with_bar(stream) -> vms_pb2.MigrationProgress | None:
    """A bar of the memory copied, with what libvirt's job says of the rest (remaining, dirty rate, downtime)."""
    columns = (TextColumn("{task.description}"), BarColumn(), TextColumn("{task.fields[detail]}"),
               TimeElapsedColumn())
    last = None
    with Progress(*columns, transient=True) as bar:
        task = bar.add_task("migrating", total=None, detail="")
        for last in stream:
            if last.done:
                continue
            bar.update(task, description=f"{last.vm} → {last.destination}", total=last.data_total or None,
                       completed=last.data_processed,
                       detail=f"{_mib(last.data_remaining)} left, dirty {last.dirty_rate} pages/s, "
                              f"downtime ~{last.expected_downtime_ms} ms")
    return last


@vm_group.command("delete")
@click.argument("name")
@click.pass_context
def vm_delete(ctx, name):
    """Delete stopped VM NAME and its snapshots; its MACs return to the pool."""
    reply = _stub(ctx).DeleteVirtualMachine(vms_pb2.DeleteVirtualMachineRequest(name=name), timeout=60)
    click.echo(f"deleted VM {name}" + (f" (released {', '.join(reply.released_macs)})" if reply.released_macs
                                       else ""))


@vm_group.command("check-order")
@click.argument("name")
@click.option("--guest", is_flag=True, help="compare what the guests call their NICs (guest agent) instead: this "
                                            "VM's guest against the source VM's guest")
@OUTPUT_OPTION
@click.pass_context
def vm_check_order(ctx, name, guest, output):
    """Compare VM NAME's (PCI address, MAC, vNIC name) order with its template or snapshot; exit 1 on a mismatch."""
    r = _stub(ctx).CheckOrder(vms_pb2.CheckOrderRequest(vm=name, guest=guest), timeout=30)
    if output == "json":
        print_json(as_dict(r))
    elif guest:
        _print_guest_order(r)
    else:
        click.echo(f"VM {r.vm} from {r.source_kind} {r.source_name}: {rule_text(r.rule)}")
        rows = []
        for i in range(max(len(r.expected), len(r.actual))):
            want = r.expected[i] if i < len(r.expected) else None
            got = r.actual[i] if i < len(r.actual) else None
            rows.append((i, want.name if want else "-", want.pci_address or "-" if want else "-",
                         got.name if got else "-", got.pci_address or "-" if got else "-", got.mac if got else "-"))
        print_table(["#", "EXPECTED NIC", "EXPECTED PCI", "VM NIC", "VM PCI", "VM MAC"], rows)
        if r.in_order:
            click.echo(f"in order: {GUARANTEE_TEXT.get(r.rule, '-')}")
        for m in r.mismatches:
            where = "VM" if m.position < 0 else f"position {m.position}"
            click.echo(f"MISMATCH {where}: {m.field}: expected {m.expected}, found {m.found}")
        if not r.in_order:
            click.echo(f"the rule promises: {GUARANTEE_TEXT.get(r.rule, '-')}")
    if not r.in_order:
        ctx.exit(1)


def guest_order_rows(r: vms_pb2.CheckOrderResponse) -> list[tuple]:
    """One row per vNIC of the VM, in its guest order: the source guest's name for it and this guest's."""
    recorded = {n.name: n.guest_name for n in r.expected}
    return [(i, n.name, recorded.get(n.name) or "-", n.guest_name or "-", n.mac) for i, n in enumerate(r.actual)]


def _print_guest_order(r: vms_pb2.CheckOrderResponse) -> None:
    click.echo(f"VM {r.vm} from {r.source_kind} {r.source_name}: what the guests call the NICs")
    print_table(["#", "VM NIC", "SOURCE GUEST NAME", "GUEST NAME", "VM MAC"], guest_order_rows(r))
    if r.in_order:
        click.echo(f"in order: every vNIC whose names are known has the name the {r.source_kind}'s guest gave it")
    for m in r.mismatches:
        nic = r.actual[m.position].name if 0 <= m.position < len(r.actual) else "VM"
        click.echo(f"MISMATCH position {m.position} (vNIC {nic}): {m.field}: expected {m.expected}, found {m.found}")


@vm_group.group("nic")
def nic_group() -> None:
    """Add or remove a VM's vNICs (hot-plugged while it runs)."""


@nic_group.command("add")
@click.argument("vm")
@click.argument("spec", metavar="NIC_SPEC")
@click.option("--profile", default="", help="a vNIC profile of the network (default: the network's own)")
@OUTPUT_OPTION
@click.pass_context
def nic_add(ctx, vm, spec, profile, output):
    """Add a vNIC to VM (NIC_SPEC as --nic of `vm create`); its MAC comes from the pool unless mac= is given."""
    nic = parse_nic(spec)
    if profile:
        nic.profile = profile
    reply = _stub(ctx).AddNic(vms_pb2.AddNicRequest(vm=vm, nic=nic), timeout=120)
    if output == "json":
        print_json(as_dict(reply))
        return
    added = next(n for n in reply.nics if n.name == parse_nic(spec).name)
    click.echo(f"added vNIC {added.name} to {vm} with MAC {added.mac}")


@nic_group.command("remove")
@click.argument("vm")
@click.argument("nic")
@click.pass_context
def nic_remove(ctx, vm, nic):
    """Remove vNIC NIC from VM; its MAC returns to the pool once the guest has released the device.

    A running guest that has not released it keeps the vNIC listed as unplugging, with its
    MAC; repeat this command once it has (or stop the VM) to finish the removal.
    """
    reply = _stub(ctx).RemoveNic(vms_pb2.RemoveNicRequest(vm=vm, nic=nic), timeout=120)
    left = next((n for n in reply.nics if n.name == nic and n.unplugging), None)
    if left is None:
        click.echo(f"removed vNIC {nic} from {vm}")
        return
    click.echo(f"vNIC {nic}: unplug requested, but the guest of {vm} has not released the device; it stays listed "
               f"as unplugging and keeps MAC {left.mac} (no other vNIC can take it). Run `virtfleet vm nic remove "
               f"{vm} {nic}` again once the guest has let go, or stop the VM, to finish the removal.")


@nic_group.command("set")
@click.argument("vm")
@click.argument("nic")
@click.option("--link", type=click.Choice(["up", "down"]), required=True, help="down: the cable is out")
@OUTPUT_OPTION
@click.pass_context
def nic_set(ctx, vm, nic, link, output):
    """Plug (up) or unplug (down) the cable of vNIC NIC: live when VM runs, and kept for its next starts."""
    reply = _stub(ctx).SetNicLink(vms_pb2.SetNicLinkRequest(vm=vm, nic=nic, up=link == "up"), timeout=120)
    if output == "json":
        print_json(as_dict(reply))
        return
    click.echo(f"vNIC {nic} of {vm}: link {link}" + (" (live)" if reply.state == "up" else ""))


@nic_group.command("sync")
@click.argument("vm")
@click.argument("nic", required=False, default="")
@OUTPUT_OPTION
@click.pass_context
def nic_sync(ctx, vm, nic, output):
    """Re-apply the vNIC profiles of running VM: NIC, or every vNIC out of sync; says what needs a restart."""
    reply = _stub(ctx).SyncNics(vms_pb2.SyncNicsRequest(vm=vm, nic=nic), timeout=120)
    if output == "json":
        print_json(as_dict(reply))
        return
    if not reply.results:
        click.echo(f"{vm}: nothing to sync" + (" (it is not running)" if reply.vm.state != "up" else ""))
    for r in reply.results:
        later = f"; needs a restart: {', '.join(r.needs_restart)}" if r.needs_restart else ""
        click.echo(f"vNIC {r.nic}: {'applied live' if r.applied_live else 'not all applied live'}{later}")


# -- template -------------------------------------------------------------------------------------


@click.group("template")
def template_group() -> None:
    """VM templates: vNICs (with PCI addresses when made from a booted VM), memory, vCPUs."""


def _print_template(t: vms_pb2.Template) -> None:
    print_fields([("name", t.name), ("datacenter", t.datacenter), ("memory", f"{t.memory_mib} MiB"),
                  ("vcpus", t.vcpus), ("made from VM", t.source_vm or "-"),
                  ("boot", boot_text(t.boot, t.HasField("boot"))), ("domain type", t.domain_type or "auto"),
                  ("vNIC order", "by PCI address" if any(n.pci_address for n in t.nics) else "by vNIC name")])
    _print_nics(t.nics, title="vNICs in guest order", macs=False)


@template_group.command("create")
@click.argument("name")
@click.option("--from-vm", default="", help="copy this VM's vNICs with the PCI addresses of its first boot")
@click.option("--nic", "nics", multiple=True, metavar="SPEC", help=f"define directly: {NIC_HELP}")
@click.option("--memory", type=click.IntRange(min=0), default=0)
@click.option("--vcpus", type=click.IntRange(min=0), default=0)
@click.option("--datacenter", default="", help="defined directly: default Default")
@boot_options
@OUTPUT_OPTION
@click.pass_context
def template_create(ctx, name, from_vm, nics, memory, vcpus, datacenter, kernel, initrd, cmdline, disk, test_guest,
                    domain_type, output):
    """Create template NAME from a VM, or directly from --nic specs; VMs made from it boot as it says (from a
    VM: as the VM does, unless --kernel/--disk/--guest/--domain-type say otherwise)."""
    t = _stub(ctx).CreateTemplate(vms_pb2.CreateTemplateRequest(
        name=name, from_vm=from_vm, datacenter=datacenter, memory_mib=memory, vcpus=vcpus,
        nics=[parse_nic(n) for n in nics], boot=boot_source(kernel, initrd, cmdline, disk, test_guest),
        domain_type=domain_type), timeout=60)
    if output == "json":
        print_json(as_dict(t))
        return
    click.echo(f"created template {t.name}")
    _print_template(t)


@template_group.command("list")
@OUTPUT_OPTION
@click.pass_context
def template_list(ctx, output):
    ts = _stub(ctx).ListTemplates(vms_pb2.ListTemplatesRequest(), timeout=30).templates
    if output == "json":
        print_json([as_dict(t) for t in ts])
        return
    print_table(["NAME", "DATACENTER", "VNICS", "PCI ADDRESSES", "FROM VM"],
                [(t.name, t.datacenter, len(t.nics), "yes" if any(n.pci_address for n in t.nics) else "no",
                  t.source_vm or "-") for t in ts])


@template_group.command("show")
@click.argument("name")
@OUTPUT_OPTION
@click.pass_context
def template_show(ctx, name, output):
    t = _stub(ctx).GetTemplate(vms_pb2.GetTemplateRequest(name=name), timeout=30)
    if output == "json":
        print_json(as_dict(t))
    else:
        _print_template(t)


@template_group.command("delete")
@click.argument("name")
@click.pass_context
def template_delete(ctx, name):
    _stub(ctx).DeleteTemplate(vms_pb2.DeleteTemplateRequest(name=name), timeout=30)
    click.echo(f"deleted template {name}")


# -- snapshot -------------------------------------------------------------------------------------


@click.group("snapshot")
def snapshot_group() -> None:
    """Snapshots of a VM's vNICs with their MACs and PCI addresses."""


@snapshot_group.command("create")
@click.argument("vm")
@click.argument("name")
@OUTPUT_OPTION
@click.pass_context
def snapshot_create(ctx, vm, name, output):
    """Snapshot VM as NAME."""
    s = _stub(ctx).CreateSnapshot(vms_pb2.CreateSnapshotRequest(vm=vm, name=name), timeout=60)
    if output == "json":
        print_json(as_dict(s))
        return
    click.echo(f"created snapshot {s.name} of {s.vm}")
    _print_nics(s.nics, title="vNICs in guest order")


@snapshot_group.command("list")
@click.argument("vm", required=False, default="")
@OUTPUT_OPTION
@click.pass_context
def snapshot_list(ctx, vm, output):
    """Snapshots (of VM, if given)."""
    ss = _stub(ctx).ListSnapshots(vms_pb2.ListSnapshotsRequest(vm=vm), timeout=30).snapshots
    if output == "json":
        print_json([as_dict(s) for s in ss])
        return
    print_table(["NAME", "VM", "VNICS", "PCI ADDRESSES", "CREATED"],
                [(s.name, s.vm, len(s.nics), "yes" if any(n.pci_address for n in s.nics) else "no",
                  when(s.created_at)) for s in ss])


@snapshot_group.command("show")
@click.argument("name")
@OUTPUT_OPTION
@click.pass_context
def snapshot_show(ctx, name, output):
    s = _stub(ctx).GetSnapshot(vms_pb2.GetSnapshotRequest(name=name), timeout=30)
    if output == "json":
        print_json(as_dict(s))
        return
    print_fields([("name", s.name), ("vm", s.vm), ("created", when(s.created_at)),
                  ("boot", boot_text(s.boot, s.HasField("boot"))), ("domain type", s.domain_type or "auto")])
    _print_nics(s.nics, title="vNICs in guest order")


@snapshot_group.command("restore")
@click.argument("name")
@OUTPUT_OPTION
@click.pass_context
def snapshot_restore(ctx, name, output):
    """Bring back snapshot NAME's vNICs and MACs on its stopped VM (a MAC taken meanwhile is replaced)."""
    r = _stub(ctx).RestoreSnapshot(vms_pb2.RestoreSnapshotRequest(name=name), timeout=60)
    if output == "json":
        print_json(as_dict(r))
        return
    click.echo(f"restored {r.vm.name} from snapshot {name}")
    for c in r.mac_changes:
        click.echo(f"  vNIC {c.nic}: MAC {c.old_mac} was taken meanwhile; now {c.new_mac}")
    _print_nics(r.vm.nics, title="vNICs in guest order")


@snapshot_group.command("delete")
@click.argument("name")
@click.pass_context
def snapshot_delete(ctx, name):
    _stub(ctx).DeleteSnapshot(vms_pb2.DeleteSnapshotRequest(name=name), timeout=30)
    click.echo(f"deleted snapshot {name}")
