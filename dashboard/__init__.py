"""The Streamlit failover dashboard: the sandbox's state, live, and its actions, on one page.

Every action calls the same `sandbox` functions as the CLI; these modules only read and lay out.
"""
