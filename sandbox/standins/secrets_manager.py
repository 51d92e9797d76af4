"""Secrets Manager holds the database credentials, in the JSON shape RDS itself stores."""

from __future__ import annotations

import json
from typing import Any

from sandbox.platform.state import StackState

SECRET_NAME = "sandbox/orders-db"


def rds_secret(state: StackState) -> dict[str, Any]:
    """The secret as RDS writes it; host and port are the proxy's, where clients connect."""
    return {
        "engine": "postgres",
        "host": state.peer_host("proxy"),
        "port": state.ports["proxy"],
        "username": state.db_user,
        "password": state.db_password,
        "dbname": state.db_name,
        "dbClusterIdentifier": "sandbox-cluster",
    }


def ensure_secret(secretsmanager: Any, state: StackState) -> None:
    """Create (or update) the DB secret. The functions read it by name (`state.secret_id`):
    its ARN ends in a random suffix that a LocalStack started again would change. The password is
    the state file's as it is now: it may have been rotated since this copy read it."""
    state.refresh()
    value = json.dumps(rds_secret(state))
    try:
        secretsmanager.create_secret(Name=SECRET_NAME, SecretString=value)
    except secretsmanager.exceptions.ResourceExistsException:
        secretsmanager.put_secret_value(SecretId=SECRET_NAME, SecretString=value)
