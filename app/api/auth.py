"""API keys → tenants, read from ``api_keys_file`` (TOML or JSON).

Format (TOML shown; JSON is the same object)::

    [keys]
    "sk-acme-0123" = "acme"                                   # a plain key
    "sha256:9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08" = "globex"   # its SHA-256

Keys are compared by their SHA-256, so the file may hold only hashes. Without a keys file the API runs in open,
single-tenant local mode, which ``create_app`` logs loudly: that is right on a laptop and wrong on a network.
"""

from __future__ import annotations

import hashlib
import json
import logging
import tomllib
from dataclasses import dataclass
from pathlib import Path

from app.api.tenancy import Tenant, check_tenant_name

log = logging.getLogger(__name__)

HASH_PREFIX = "sha256:"


class KeysFileError(ValueError):
    """The keys file is missing or malformed; the message names the file and the problem."""


def key_digest(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


@dataclass(frozen=True)
class KeyRing:
    """Tenants by key digest; ``open`` when no keys file is configured."""

    tenants_by_digest: dict[str, str]
    source: Path | None

    @property
    def open(self) -> bool:
        return self.source is None

    @classmethod
    def load(cls, path: Path | None) -> KeyRing:
        if path is None:
            return cls({}, None)
        try:
            raw = path.read_bytes()
        except OSError as exc:
            raise KeysFileError(f"api_keys_file {path} cannot be read: {exc.strerror or exc}") from None
        try:
            data = tomllib.loads(raw.decode()) if path.suffix.lower() == ".toml" else json.loads(raw)
        except (tomllib.TOMLDecodeError, json.JSONDecodeError, UnicodeDecodeError) as exc:
            kind = "TOML" if path.suffix.lower() == ".toml" else "JSON"
            raise KeysFileError(f"api_keys_file {path} is not valid {kind}: {exc}") from None
        keys = data.get("keys") if isinstance(data, dict) else None
        if not isinstance(keys, dict) or not keys:
            raise KeysFileError(
                f"api_keys_file {path} needs a non-empty 'keys' table of key = tenant "
                "(unset RAGLINE_API_KEYS_FILE for open local mode)"
            )
        tenants: dict[str, str] = {}
        for key, tenant in keys.items():
            if not isinstance(tenant, str):
                raise KeysFileError(f"api_keys_file {path}: the tenant of a key must be a string, got {tenant!r}")
            try:
                check_tenant_name(tenant)
            except ValueError as exc:
                raise KeysFileError(f"api_keys_file {path}: {exc}") from None
            if key.startswith(HASH_PREFIX):
                digest = key[len(HASH_PREFIX) :].lower()
                if len(digest) != 64 or any(c not in "0123456789abcdef" for c in digest):
                    raise KeysFileError(f"api_keys_file {path}: {key[:20]}... is not 'sha256:' + 64 hex digits")
            else:
                digest = key_digest(key)
            tenants[digest] = tenant
        return cls(tenants, path)

    def tenant_for(self, key: str | None) -> Tenant | None:
        """The tenant a presented key belongs to; None when the key is unknown (or absent)."""
        if self.open:
            return Tenant(None)
        if not key:
            return None
        name = self.tenants_by_digest.get(key_digest(key))
        return Tenant(name) if name else None

    def describe(self) -> str:
        if self.open:
            return "open single-tenant local mode: no API keys file, every caller sees every collection"
        tenants = sorted(set(self.tenants_by_digest.values()))
        return f"API keys from {self.source}: {len(self.tenants_by_digest)} key(s), tenants {', '.join(tenants)}"
