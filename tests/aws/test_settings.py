"""Context values come as JSON from cdk.json and as strings from ``-c``: both must mean the same."""

from __future__ import annotations

import pytest
from aws_cdk import App

from aws.settings import AppSettings


def _settings(context: dict) -> AppSettings:
    return AppSettings.from_context(App(context=context).node)


def test_defaults_are_the_cheap_workshop_stack() -> None:
    settings = _settings({})
    assert settings == AppSettings()
    assert settings.serverless
    assert not settings.deletion_protection


@pytest.mark.parametrize("value", [True, "true", "True", "1", "yes"])
def test_true_flags(value) -> None:
    assert _settings({"deletion_protection": value}).deletion_protection is True


@pytest.mark.parametrize("value", [False, "false", "0", "no", ""])
def test_false_flags(value) -> None:
    assert _settings({"direct_path": value}).direct_path is False


def test_a_flag_that_is_neither_is_refused() -> None:
    with pytest.raises(ValueError, match="true/false"):
        _settings({"direct_path": "maybe"})


def test_an_instance_class_means_provisioned_instances() -> None:
    settings = _settings({"instance_class": "r6g.large", "min_acu": "1", "max_acu": 8})
    assert not settings.serverless
    assert (settings.min_acu, settings.max_acu) == (1.0, 8.0)


def test_termination_protection_is_on_unless_a_workshop_turns_it_off() -> None:
    assert _settings({}).termination_protection is True
    assert _settings({"termination_protection": "false"}).termination_protection is False
