"""What both pages (the local one and the AWS one) set up before anything else."""

from __future__ import annotations

import streamlit as st

#: A projector's 1280x720 has room for the picture, the depth chart and the scoreboard at once
#: only without Streamlit's wide margins (6 rem above the page, 5 rem each side). Table cells
#: wrap anywhere (an endpoint has no space to wrap at) rather than run past the table's edge.
PROJECTOR = (
    "[data-testid='stMainBlockContainer']"
    "{padding: 2.5rem 1.5rem 2rem 1.5rem !important; max-width: none !important;}"
    "[data-testid='stHeader'] {background: transparent;}"  # only its menu, top right
    "[data-testid='stMain'] [data-testid='stAlertContainer'] {padding: 0.5rem 1rem;}"
    "[data-testid='stSidebar'] h1 {font-size: 1.75rem !important;}"
    ".st-key-picture svg {max-height: 200px;}"
    ".st-key-depth [data-testid='stMetricValue'], .st-key-scoreboard [data-testid='stMetricValue']"
    "{font-size: 1.875rem;}"
    "[data-testid='stTable'] td, [data-testid='stTable'] th {overflow-wrap: anywhere;}"
)


def setup(title: str) -> None:
    """The page's title and width, and no dimming of the parts a fragment redraws."""
    st.set_page_config(page_title=title, page_icon="🛡️", layout="wide")
    # Streamlit dims the elements of a running rerun until they are redrawn. The live part reruns
    # every few seconds, so it would blink; nothing on these pages is stale in that sense.
    st.html(
        "<style>[data-testid='stElementContainer'][data-stale='true']"
        "{opacity: 1 !important; transition: none !important;}" + PROJECTOR + "</style>"
    )
