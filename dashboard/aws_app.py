"""The dashboard against a stack deployed from ``aws/``: read-only but for the DLQ's redrive.

`sandbox dashboard --target aws --stack NAME [--region R]` starts it and names the stack in the
environment. By hand: ``SANDBOX_AWS_STACK=NearZeroRpo .venv/bin/python -m streamlit run
dashboard/aws_app.py``. It reads with the credentials of whoever started it, as the AWS drill does.
"""

from __future__ import annotations

import os

import streamlit as st

from dashboard import aws_live, clicks, layout
from dashboard.errors import readable
from sandbox.drills.targets.aws import DEFAULT_REGION
from sandbox.platform.hints import command as hint
from sandbox.standins.dashboard import REGION_ENV, STACK_ENV

clicks.done()
layout.setup("near-zero-RPO sandbox on AWS")
st.title("Near-zero-RPO sandbox on AWS")
stack = os.environ.get(STACK_ENV)
if not stack:
    st.warning(
        f"No stack named: start this page with `{hint('dashboard --target aws --stack NAME')}`"
    )
    st.stop()
region = os.environ.get(REGION_ENV) or DEFAULT_REGION
try:
    target = aws_live.connect(stack, region)
except Exception as error:  # e.g. a region botocore refuses: one line, never a traceback
    st.error(f"Cannot reach stack {stack} in {region}: {readable(error)}")
    st.stop()
st.caption(
    f"CloudFormation stack {stack} in {region}, through AWS's APIs with your credentials: the "
    "queue's and the DLQ's depth, the DLQ's contents, and its redrive. Nothing else here changes "
    "the stack."
)
aws_live.sidebar(target)
aws_live.page(target)
