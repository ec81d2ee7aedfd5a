"""The API key a UI deployed for one tenant is started with (``ragline ui --api-key-file``).

Checked when the UI starts, against the API's key ring, so a wrong key fails the start naming the problem rather
than showing every visitor an error. The key reaches the Streamlit process through its environment (``KEY_ENV``),
never its command line, where other users of the machine could read it. No Streamlit here: the CLI imports this.
"""

from __future__ import annotations

from pathlib import Path

from app.api.auth import KeyRing, KeysFileError
from app.api.tenancy import Tenant

KEY_ENV = "RAGLINE_UI_API_KEY"


class StartKeyError(ValueError):
    """The key file cannot be read, is empty, or holds no key of the configured keys file."""


def read_start_key(key_file: Path, keys_file: Path | None) -> tuple[str, Tenant]:
    """The key in ``key_file`` and its tenant under the API keys in ``keys_file``."""
    try:
        key = key_file.read_text(encoding="utf-8").strip()
    except (OSError, UnicodeDecodeError) as exc:
        raise StartKeyError(f"{key_file} cannot be read: {getattr(exc, 'strerror', None) or exc}") from None
    if not key:
        raise StartKeyError(f"{key_file} is empty")
    try:
        ring = KeyRing.load(keys_file)
    except KeysFileError as exc:
        raise StartKeyError(str(exc)) from None
    if ring.open:
        raise StartKeyError("no API keys are configured (RAGLINE_API_KEYS_FILE): without them the UI is local")
    tenant = ring.tenant_for(key)
    if tenant is None:
        raise StartKeyError(f"the key in {key_file} is not a key of {keys_file}")
    return key, tenant
