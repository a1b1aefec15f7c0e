"""The files the test guest's initramfs carries besides binaries: /init and its helpers.

INIT_VERSION is part of the cache key: change it with any of these texts, and every
host rebuilds its guest at next use.

Why /init does each thing (measured on Debian's 6.1 cloud kernel under TCG):
- devtmpfs is built in but not mounted by the kernel for an initramfs: /init mounts it,
  then takes the console as its stdio (the cpio holds no device nodes);
- virtio_pci, virtio_net, virtio_console, virtio_blk and the ACPI button are modules;
  modprobe reads the modules.dep the builder made with busybox's depmod;
- there is no udev: /init makes /dev/virtio-ports/NAME for the guest agent's port itself,
  polling until QEMU has sent the port's name (it arrives after the driver binds);
- carrier, not operstate, says a NIC is up (operstate lags ~1 s behind);
- a NIC whose MAC `vf.ip=` names gets that address at once; any other asks DHCP
  (three tries a second apart, then udhcpc keeps trying in the background), so a
  bridge with no DHCP server costs ~3 s only for NICs the command line left out;
- arp_ignore=1/arp_announce=2: each NIC answers ARP for its own addresses only, so
  several NICs on one bridge do not answer for each other (anti-spoofing tests read
  which MAC answers);
- udhcpc backgrounds itself and is inherited by PID 1, so /init waits for its NIC jobs by pid;
- hot-plugged NICs are configured by a 0.5 s poll of /sys/class/net (no udev, no
  netlink listener in busybox sh); hot-unplug is the kernel's (ACPI PCI hot-plug);
- a NIC is known by its ifindex, not its MAC: a re-plugged device is a new ifindex
  under a reused ethN, while a guest that changes its own MAC (the anti-spoofing
  tests do) keeps its NIC configured, addresses included;
- qemu-ga runs in a respawn loop; /sbin/shutdown is a shim for its guest-shutdown,
  and busybox acpid powers off on the ACPI power button (libvirt's shutdown).
"""
from __future__ import annotations

from .cmdline import NIC_MARKER_PREFIX, NICS_UP_MARKER, STATIC_IP_PARAM

INIT_VERSION = "3"
MODULES = ("virtio_pci", "virtio_net", "virtio_console", "virtio_blk", "button")
AGENT_PORT = "org.qemu.guest_agent.0"

INIT = r"""#!/bin/busybox sh
# virtfleet test guest /init, version @VERSION@ (built by agent/guest; see init_script.py for the why)
/bin/busybox mkdir -p /proc /sys /dev /run /tmp /var /sbin /usr/bin /usr/sbin
/bin/busybox --install -s
export PATH=/sbin:/bin:/usr/sbin:/usr/bin
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev
exec </dev/console >/dev/console 2>&1
mkdir -p /dev/pts /run/vf /run/qga && mount -t devpts devpts /dev/pts
ln -sfn /run /var/run
say() { echo "virtfleet-guest: $*"; }
say "init @VERSION@ $(uname -r)"
for m in @MODULES@; do modprobe "$m" 2>/dev/null || say "module $m did not load"; done
echo 1 > /proc/sys/net/ipv4/conf/all/arp_ignore
echo 2 > /proc/sys/net/ipv4/conf/all/arp_announce
ip link set lo up

static_for() {  # MAC -> ADDR/PREFIX from vf.ip=MAC=ADDR/PREFIX[,...]
  for word in $(cat /proc/cmdline); do
    case "$word" in
      @PARAM@=*)
        old_ifs=$IFS; IFS=,
        for pair in ${word#@PARAM@=}; do
          if [ "$(echo "${pair%%=*}" | tr A-F a-f)" = "$1" ]; then IFS=$old_ifs; echo "${pair#*=}"; return; fi
        done
        IFS=$old_ifs ;;
    esac
  done
}

bring_up() {  # one NIC: link up, wait for carrier (3 s at most), static address or DHCP, one line on the console
  ifc=$1
  mac=$(cat /sys/class/net/$ifc/address)
  cat /sys/class/net/$ifc/ifindex > /run/vf/$ifc
  echo 1 > /proc/sys/net/ipv4/conf/$ifc/arp_ignore 2>/dev/null
  echo 2 > /proc/sys/net/ipv4/conf/$ifc/arp_announce 2>/dev/null
  ip link set "$ifc" up
  n=0
  while [ "$(cat /sys/class/net/$ifc/carrier 2>/dev/null)" != 1 ] && [ $n -lt 30 ]; do sleep 0.1; n=$((n + 1)); done
  carrier=no-carrier
  [ "$(cat /sys/class/net/$ifc/carrier 2>/dev/null)" = 1 ] && carrier=carrier
  addr=$(static_for "$mac")
  if [ -n "$addr" ]; then
    ip addr add "$addr" dev "$ifc"
  else
    udhcpc -i "$ifc" -s /etc/udhcpc.script -t 3 -T 1 -A 3 -b -p /run/udhcpc.$ifc.pid >/dev/null 2>&1
    addr=$(ip -4 -o addr show dev "$ifc" | awk '{print $4}' | head -n 1)
    [ -n "$addr" ] || addr=dhcp-pending
  fi
  echo "@NICMARK@$ifc $mac $carrier $addr"
}

configure_new() {  # every NIC not configured yet, in parallel; forget the ones unplugged
  for marker in /run/vf/*; do
    [ -e "$marker" ] || continue
    ifc=${marker##*/}
    if [ ! -e /sys/class/net/$ifc ] || [ "$(cat /sys/class/net/$ifc/ifindex)" != "$(cat $marker)" ]; then
      rm -f "$marker"
      [ -e /run/udhcpc.$ifc.pid ] && kill "$(cat /run/udhcpc.$ifc.pid)" 2>/dev/null && rm -f /run/udhcpc.$ifc.pid
      say "nic $ifc gone"
    fi
  done
  pids=""
  for path in /sys/class/net/*; do
    ifc=${path##*/}
    [ "$ifc" = lo ] || [ -e /run/vf/$ifc ] || [ ! -e $path/device ] || { bring_up "$ifc" & pids="$pids $!"; }
  done
  # by pid: a bare `wait` in PID 1 would also wait for the udhcpc daemons it inherits as orphans
  for pid in $pids; do wait "$pid"; done
}

run_agent() {  # /dev/virtio-ports links (no udev), then qemu-ga, respawned if it ever exits
  while :; do
    for port in /sys/class/virtio-ports/*; do
      [ -r "$port/name" ] || continue
      name=$(cat "$port/name")
      [ -n "$name" ] || continue
      mkdir -p /dev/virtio-ports
      ln -sfn "../${port##*/}" "/dev/virtio-ports/$name"
    done
    if [ -e /dev/virtio-ports/@PORT@ ]; then
      qemu-ga -m virtio-serial -p /dev/virtio-ports/@PORT@ -t /run/qga >>/run/qga.log 2>&1
      sleep 1
    else
      sleep 0.2
    fi
  done
}

run_agent &
acpid -c /etc/acpi 2>/dev/null
configure_new
echo "@NICSUP@"
while :; do sleep 0.5; configure_new; done
"""

UDHCPC_SCRIPT = r"""#!/bin/sh
# udhcpc's hook: apply the lease to the NIC (busybox-static ships no default script)
case "$1" in
  deconfig) ip -4 addr flush dev "$interface" ;;
  bound|renew)
    ip -4 addr flush dev "$interface"
    ip addr add "$ip/${mask:-24}" dev "$interface"
    for r in $router; do ip route replace default via "$r" dev "$interface"; break; done ;;
esac
exit 0
"""

# qemu-ga's guest-shutdown execs /sbin/shutdown -P|-H|-r +0 MESSAGE; busybox has no shutdown applet.
SHUTDOWN_SHIM = r"""#!/bin/sh
sync
case " $* " in
  *" -r "*) exec reboot -f ;;
  *" -H "*) exec halt -f ;;
  *) exec poweroff -f ;;
esac
"""

# busybox acpid runs CONFDIR/PWRF/00000080 for the ACPI power button.
POWER_BUTTON = "#!/bin/sh\nsync\nexec poweroff -f\n"


def init_text() -> str:
    return (INIT.replace("@VERSION@", INIT_VERSION).replace("@MODULES@", " ".join(MODULES))
            .replace("@PARAM@", STATIC_IP_PARAM).replace("@NICMARK@", NIC_MARKER_PREFIX)
            .replace("@NICSUP@", NICS_UP_MARKER).replace("@PORT@", AGENT_PORT))


def files() -> dict[str, str]:
    """Path inside the initramfs -> text of every executable script it carries."""
    return {"init": init_text(), "etc/udhcpc.script": UDHCPC_SCRIPT, "sbin/shutdown": SHUTDOWN_SHIM,
            "etc/acpi/PWRF/00000080": POWER_BUTTON}
