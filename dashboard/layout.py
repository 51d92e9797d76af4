"""What both pages (the local one and the AWS one) set up before anything else."""

from __future__ import annotations

import streamlit as st


def setup(title: str) -> None:
    """The page's title and width, and no dimming of the parts a fragment redraws."""
    st.set_page_config(page_title=title, page_icon="🛡️", layout="wide")
    # Streamlit dims the elements of a running rerun until they are redrawn. The live part reruns
    # every few seconds, so it would blink; nothing on these pages is stale in that sense.
    st.html(
        "<style>[data-testid='stElementContainer'][data-stale='true']"
        "{opacity: 1 !important; transition: none !important;}</style>"
    )
