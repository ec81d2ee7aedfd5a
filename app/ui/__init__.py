"""Helpers of the Streamlit UI: pure functions over traces, settings, documents and reports, plus the views."""
