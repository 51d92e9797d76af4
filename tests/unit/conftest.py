"""The AWS target's Stubber fixtures, defined with the drill's tests, shared with the AWS
dashboard's (`test_aws_dashboard.py`)."""

from tests.unit.test_aws_drill import clock, stubs, target  # noqa: F401
