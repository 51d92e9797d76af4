"""The failover dashboard. `make up` starts it (and prints its URL); so does `make dashboard`.

By hand, from the project directory: ``SANDBOX_RUN_DIR=... .venv/bin/python -m streamlit run
dashboard/app.py`` (``python -m`` puts the project on the import path, which `dashboard` needs).
"""

from __future__ import annotations

import streamlit as st

from dashboard import architecture, clicks, controls, layout, live
from sandbox.platform.state import NotRunning, load

clicks.done()
layout.setup("near-zero-RPO sandbox")
try:
    state = load()
except NotRunning as error:
    st.title("Near-zero-RPO sandbox")
    st.warning(f"No stack is running: run `make up` (it starts this dashboard too). ({error})")
    st.stop()
with st.sidebar:  # the main area is the projector's: the live parts fill its first screen
    st.title("Near-zero-RPO sandbox")
    st.caption(
        "Orders go through a durable queue to the writer: fail the writer over and count what "
        f"survives. API {state.public_url('api')} - run dir {state.run_dir}"
    )
st.html(architecture.STYLE)
controls.sidebar(state)
live.page()
