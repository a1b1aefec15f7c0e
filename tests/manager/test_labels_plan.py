"""What a label change means for one host, and what a label may be (pure)."""
from __future__ import annotations

import pytest

from manager.domain.labels import check_label, plan, wanted
from virtfleet.errors import InvalidArgument

NO = frozenset()


def L(*labels: str) -> frozenset[str]:
    return frozenset(labels)


def test_networks_sharing_a_label_with_a_nic_land_on_it():
    assert wanted({"eth1": L("blue")}, {"red": L("blue"), "green": L("blue"), "other": L("x")}) == \
        {"red": "eth1", "green": "eth1"}


def test_labelling_a_network_attaches_it_on_the_labelled_nic():
    nics = {"eth1": L("blue")}
    todo = plan(before=(nics, {"red": NO}), after=(nics, {"red": L("blue")}), attached={"ovirtmgmt": "eth0"})
    assert (todo.attach, todo.detach, todo.skipped) == ([("red", "eth1")], [], [])


def test_removing_a_label_detaches_only_what_it_put_there():
    nets = {"red": L("blue"), "green": L("blue", "keep")}
    todo = plan(before=({"eth1": L("blue", "keep")}, nets), after=({"eth1": L("keep")}, nets),
                attached={"red": "eth1", "green": "eth1"})
    assert (todo.attach, todo.detach) == ([], ["red"])


def test_a_network_attached_by_hand_elsewhere_is_left_there_and_reported():
    todo = plan(before=({}, {}), after=({"eth1": L("blue")}, {"red": L("blue")}), attached={"red": "eth2"})
    assert (todo.attach, todo.detach, todo.skipped) == ([], [], ["red: attached on eth2 already"])
    gone = plan(before=({"eth1": L("blue")}, {"red": L("blue")}), after=({}, {"red": L("blue")}),
                attached={"red": "eth2"})
    assert gone.empty


def test_setting_a_label_again_applies_only_what_is_missing():
    nics, nets = {"eth1": L("blue")}, {"red": L("blue"), "green": L("blue")}
    todo = plan(before=(nics, nets), after=(nics, nets), attached={"red": "eth1"})
    assert (todo.attach, todo.detach) == ([("green", "eth1")], [])


@pytest.mark.parametrize("label", ["blue", "a.b-c_d", "0", "x" * 50])
def test_good_labels(label):
    assert check_label(label) == label


@pytest.mark.parametrize("label", ["", "has space", "a/b", "é", "x" * 51, "a:b", "a\x00b"])
def test_bad_labels_name_the_field(label):
    with pytest.raises(InvalidArgument) as err:
        check_label(label, "label")
    assert err.value.field == "label"
