"""Live migration's pure decisions: the options an admin may give, and how a restarted manager settles a row."""
from __future__ import annotations

import pytest

from manager.domain.migration import (MAX_BANDWIDTH_MIB_S, MAX_DOWNTIME_MS, MAX_TIMEOUT_S, MigrationOptions,
                                      RunningMigration, Settlement, check_options, settle)
from virtfleet.errors import InvalidArgument

ROW = RunningMigration(7, 1, "vm1", 10, "host1", 20, "host2")


def _options(**kw) -> MigrationOptions:
    asked = dict(max_downtime_ms=0, bandwidth_mib_s=0, auto_converge=False, post_copy=False, timeout_s=0)
    return check_options(**{**asked, **kw})


@pytest.mark.parametrize("field,value", [("max_downtime_ms", MAX_DOWNTIME_MS + 1),
                                         ("bandwidth_mib_s", MAX_BANDWIDTH_MIB_S + 1),
                                         ("timeout_s", MAX_TIMEOUT_S + 1),
                                         ("max_downtime_ms", 2**32 - 1),      # a -1 from a client, unsigned
                                         ("bandwidth_mib_s", 2**32 - 1)])
def test_an_absurd_option_is_refused_naming_its_field(field, value):
    with pytest.raises(InvalidArgument) as err:
        _options(**{field: value})
    assert err.value.field == field and str(value) in err.value.description


def test_zero_means_the_default_and_the_bounds_themselves_are_accepted():
    assert _options() == MigrationOptions()
    top = _options(max_downtime_ms=MAX_DOWNTIME_MS, bandwidth_mib_s=MAX_BANDWIDTH_MIB_S, timeout_s=MAX_TIMEOUT_S)
    assert (top.max_downtime_ms, top.bandwidth_mib_s, top.timeout_s) == (MAX_DOWNTIME_MS, MAX_BANDWIDTH_MIB_S,
                                                                          MAX_TIMEOUT_S)


def test_post_copy_with_auto_converge_is_refused():
    with pytest.raises(InvalidArgument) as err:
        _options(post_copy=True, auto_converge=True)
    assert err.value.field == "post_copy"
    assert _options(post_copy=True).post_copy and _options(auto_converge=True).auto_converge


@pytest.mark.parametrize("job,on_source,on_dest,settlement,state,moves", [
    (True, True, False, Settlement.WAIT, "", False),        # libvirt still migrates: wait, whatever runs where
    (True, True, True, Settlement.WAIT, "", False),
    (False, False, True, Settlement.MOVED, "succeeded", True),
    (False, True, False, Settlement.STAYED, "failed", False),
    (False, True, True, Settlement.TWICE, "failed", False),
    (False, False, False, Settlement.LOST, "failed", False),
])
def test_a_left_over_migration_is_settled_by_where_the_vm_runs(job, on_source, on_dest, settlement, state, moves):
    outcome = settle(ROW, job, on_source, on_dest)
    assert (outcome.settlement, outcome.state, outcome.moves_record) == (settlement, state, moves)
    assert "vm1" in outcome.message or settlement is Settlement.WAIT


def test_a_settlement_that_leaves_the_record_names_both_hosts_and_the_audit():
    for runs in ((True, True), (False, False)):
        message = settle(ROW, False, *runs).message
        assert "host1" in message and "host2" in message and "vm-state" in message


def test_a_deleted_host_is_said_so():
    row = RunningMigration(7, 1, "vm1", None, None, 20, "host2")
    assert settle(row, False, False, True).settlement is Settlement.MOVED
    assert "deleted" in settle(row, False, False, False).message
