"""What `vm migrate` and `host maintenance` print when piped: one plain line per progress message."""
from __future__ import annotations

from manager.cli.hosts import maintenance_line
from manager.cli.vms import progress_line
from virtfleet.v1 import fleet_pb2, vms_pb2


def test_a_progress_line_says_how_far_what_is_left_the_dirty_rate_and_the_expected_downtime():
    line = progress_line(vms_pb2.MigrationProgress(vm="vm1", source="host1", destination="host2",
                                                   time_elapsed_ms=1500, data_total=4 << 20, data_processed=1 << 20,
                                                   data_remaining=3 << 20, dirty_rate=120, expected_downtime_ms=80,
                                                   phase="precopy"))
    assert line == ("vm1 host1 → host2: 25%, 3.0 MiB remaining, dirty rate 120 pages/s, expected downtime 80 ms, "
                    "1.5 s, precopy")


def test_before_the_copy_begins_the_line_says_the_destination_is_being_prepared():
    line = progress_line(vms_pb2.MigrationProgress(vm="vm1", source="host1", destination="host2",
                                                   time_elapsed_ms=1000))
    assert line == "vm1 host1 → host2: preparing the destination, 1.0 s"


def test_the_last_line_says_where_it_runs_and_the_downtime():
    done = vms_pb2.MigrationProgress(vm="vm1", source="host1", destination="host2", done=True, downtime_ms=140)
    assert progress_line(done) == "VM vm1 migrated from host1 to host2 (downtime 140 ms)"


def test_a_maintenance_line_names_the_vm_its_destination_and_what_is_left():
    step = fleet_pb2.MaintenanceProgress(host="host3", vm="mt1", destination="host1", state="migrated", remaining=2)
    assert maintenance_line(step) == "VM mt1 → host1: migrated; 2 left on host3"
    failed = fleet_pb2.MaintenanceProgress(host="host3", vm="mt2", state="failed", message="no host", remaining=2)
    assert maintenance_line(failed) == "VM mt2: failed (no host); 2 left on host3"
    assert maintenance_line(fleet_pb2.MaintenanceProgress(host="host3", state="maintenance",
                                                          message="host host3 is in maintenance")) == \
        "host host3 is in maintenance"


def test_a_downtime_bandwidth_or_timeout_of_zero_or_absurd_size_is_refused_before_any_call():
    """Checked by the CLI itself (the API's unsigned fields cannot say ≤ 0; 0 there is "libvirt's default"):
    exit status 2 naming the option, with no manager to call at all."""
    from click.testing import CliRunner

    from manager.cli.main import cli
    for option, value in (("--max-downtime", "0"), ("--max-downtime", "60001"), ("--bandwidth", "0"),
                          ("--bandwidth", "-5"), ("--timeout", "0"), ("--timeout", "86401")):
        result = CliRunner().invoke(cli, ["--manager", "unix:///nonexistent.sock", "vm", "migrate", "vm1",
                                          option, value])
        assert result.exit_code == 2 and option in result.output, (option, value, result.output)
