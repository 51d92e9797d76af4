"""The secret-rotated fault as the rest of the sandbox sees it: a drill fault of the local stack
only, not one of chaos's unannounced ones, and a rotated password that a process holding an older
copy of the state still writes correctly into PgBouncer's auth file and the secret."""

from __future__ import annotations

import json
from typing import Any

from sandbox.drills import chaos, drill
from sandbox.drills.targets import aws
from sandbox.ops import faults
from sandbox.platform.state import load
from sandbox.spec import choices
from sandbox.standins import rds_proxy, secrets_manager
from tests.unit.test_network import make_state


def test_it_is_a_drill_fault_of_every_local_stack_and_refused_on_aws_with_a_reason():
    assert "secret-rotated" in choices.FAULTS
    assert "secret-rotated" in drill.faults_on("native") and "secret-rotated" in drill.faults_on(
        "compose"
    )
    assert "Secrets Manager" in aws.UNSUPPORTED["secret-rotated"]


def test_chaos_deals_only_unannounced_faults_so_not_this_one():
    """Chaos's faults are done to a process from outside and repaired by the control plane; a
    rotation is done by the sandbox itself, as proxy-restart is."""
    assert "secret-rotated" not in faults.UNANNOUNCED
    for runtime in choices.RUNTIMES:
        assert "secret-rotated" not in chaos.kinds_on(runtime)


class SecretsManager:
    """LocalStack's Secrets Manager as `ensure_secret` calls it: the secret exists already."""

    class exceptions:  # boto3 names it so
        ResourceExistsException = KeyError

    def __init__(self) -> None:
        self.values: list[dict[str, Any]] = []

    def create_secret(self, Name: str, SecretString: str) -> None:
        raise KeyError(Name)

    def put_secret_value(self, SecretId: str, SecretString: str) -> None:
        self.values.append(json.loads(SecretString))


def test_copies_of_the_state_read_before_a_rotation_write_the_new_password(tmp_path):
    """The control plane restarting PgBouncer, or LocalStack restored, after a rotation must not
    put the old password back: each reads the state file as it is now."""
    make_state(tmp_path, "native").save()
    proxys, localstacks = load(tmp_path), load(tmp_path)  # two processes' copies, read before
    rotated = load(tmp_path)
    rotated.db_password = "rotated"
    rotated.save()
    assert proxys.db_password == localstacks.db_password == "pw"  # not read again yet
    rds_proxy.write_config(proxys)
    assert f'"{rotated.db_user}" "rotated"' in (tmp_path / "userlist.txt").read_text()
    client = SecretsManager()
    secrets_manager.ensure_secret(client, localstacks)
    assert client.values == [secrets_manager.rds_secret(rotated)]
