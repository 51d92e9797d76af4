"""Partitions (a server cut off the network while it runs) need a network between the servers:
the Compose profile's. Natively they are refused before anything happens, in one line."""

from __future__ import annotations

import pytest

from sandbox.drills import drill
from sandbox.drills.targets import aws
from sandbox.drills.targets.local import LocalTarget
from sandbox.ops import faults
from sandbox.platform import runtime
from sandbox.spec import choices
from tests.unit.test_network import make_state


def test_the_partitions_are_unannounced_drill_faults_with_a_repair_event():
    assert faults.PARTITIONS == ("writer-partitioned", "reader-partitioned")
    for name in faults.PARTITIONS:
        assert name in choices.FAULTS
        assert faults.UNANNOUNCED[name].recovered, name  # the control plane ends them
    assert set(faults.PARTITIONS) <= set(aws.UNSUPPORTED)


@pytest.mark.parametrize("fault", faults.PARTITIONS)
def test_a_native_stack_refuses_a_partition_drill_in_one_line(tmp_path, fault):
    with pytest.raises(ValueError, match="needs a network between the servers"):
        LocalTarget(make_state(tmp_path, "native")).check(fault, None)


def test_a_compose_stack_takes_a_partition_drill(tmp_path):
    LocalTarget(make_state(tmp_path, "compose")).check("writer-partitioned", None)


def test_the_native_runtime_has_no_network_to_cut(tmp_path):
    with pytest.raises(runtime.NoNetwork, match="PROFILE=compose"):
        runtime.Native().partition(make_state(tmp_path, "native"), "n1")


def test_only_a_compose_stack_offers_the_partitions_and_only_a_native_one_its_keeper():
    native, compose = drill.faults_on("native"), drill.faults_on("compose")
    assert not set(native) & set(faults.PARTITIONS)
    assert set(faults.PARTITIONS) <= set(compose)
    assert "keeper-killed" in native and "keeper-killed" not in compose
    assert set(native) | set(compose) == set(choices.FAULTS)
