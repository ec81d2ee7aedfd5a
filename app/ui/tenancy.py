"""Who is using the UI: with API keys configured, a tenant signed in with its key, seeing only what it owns.

The UI runs the pipeline in-process, so it must apply the API's tenancy itself, with the API's own code: the key
ring of ``app.api.auth`` (the same keys file, the same digests) and the names of ``app.api.tenancy`` (a tenant's
collection ``docs`` is stored as ``<tenant>__docs``). Every page calls ``current_tenant()`` first; without a
signed-in tenant the page shows the sign-in form and stops. Without a keys file the UI is the local single-user
tool it always was (``Tenant(None)``: every collection, no prefix).

A key can also be given when the UI starts (``RAGLINE_UI_API_KEY``, which ``ragline ui --api-key-file`` sets), for
a UI deployed for one tenant: every browser session is then that tenant, and there is nothing to sign out of.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

import streamlit as st

from app.api.auth import KeyRing, KeysFileError
from app.api.tenancy import Tenant
from app.settings import get_settings
from app.ui.start_key import KEY_ENV

log = logging.getLogger(__name__)

_SIGNED_IN = "tenant"
INVALID_KEY = "invalid API key"
INVALID_START_KEY = f"the API key this UI was started with ({KEY_ENV}) is not valid: ask the operator"
MISCONFIGURED = "this UI cannot check API keys right now: ask the operator (the server log has the details)"


@st.cache_resource(show_spinner=False)
def _key_ring(path: str | None) -> KeyRing:
    return KeyRing.load(Path(path) if path else None)


def key_ring() -> KeyRing:
    """The API's key ring for the current settings (loaded once per keys file)."""
    path = get_settings().api_keys_file
    return _key_ring(str(path) if path else None)


def sign_in(key: str) -> Tenant | None:
    """The tenant of ``key`` (remembered for this browser session), or None for a wrong key."""
    tenant = key_ring().tenant_for(key.strip())
    if tenant is not None and tenant.name is not None:
        st.session_state[_SIGNED_IN] = tenant.name
    return tenant


def sign_out() -> None:
    for key in list(st.session_state):
        del st.session_state[key]  # the chat, its memory sessions, picked collections: all were the tenant's


def current_tenant() -> Tenant:
    """The signed-in tenant (local mode: ``Tenant(None)``); otherwise the sign-in form, and the page stops."""
    try:
        ring = key_ring()
    except KeysFileError as exc:  # the operator's problem; a visitor learns nothing about the server's files
        log.error("the UI cannot load the API keys: %s", exc)
        st.error(MISCONFIGURED)
        st.stop()
    if ring.open:
        return Tenant(None)
    start_key = os.environ.get(KEY_ENV, "").strip()
    name = st.session_state.get(_SIGNED_IN)
    if start_key:
        tenant = ring.tenant_for(start_key)
        if tenant is None:
            st.error(INVALID_START_KEY)
            st.stop()
        name = tenant.name
        st.session_state[_SIGNED_IN] = name
    if name is not None:
        with st.sidebar:
            st.caption(f"Signed in as tenant **{name}**")
            if not start_key and st.button("Sign out", key="sign-out"):
                sign_out()
                st.rerun()
        return Tenant(name)
    _sign_in_form()
    st.stop()


def _sign_in_form() -> None:
    st.title("Sign in")
    st.caption("This ragline serves several tenants: enter your API key to see your collections.")
    with st.form("sign-in"):
        key = st.text_input("API key", type="password", key="sign-in-key")
        submitted = st.form_submit_button("Sign in", type="primary")
    if submitted:
        if sign_in(key) is None:
            st.error(INVALID_KEY)
        else:
            st.rerun()
