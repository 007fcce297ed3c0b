"""Clients and their API keys: who is calling, and may they administer.

A key is never stored or logged as it is: a directory keeps the SHA-256 of each key
(keys are 32 random bytes when issued, so a fast hash is enough; `dev-key` is a local
default only). Locally the keys come from `API_KEYS="name:key[:admin],..."`; deployed,
from the clients table that `scripts/issue_key.py` writes (docs/threat-model.md).
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Protocol

from chalicelib.errors import EngineError

__all__ = [
    "DEFAULT_API_KEYS",
    "ChainedDirectory",
    "Client",
    "ClientDirectory",
    "Forbidden",
    "MemoryClientDirectory",
    "Unauthorized",
    "client_from_context",
    "hash_key",
    "key_from_request",
    "new_key",
    "parse_api_keys",
]

# The one client a local run has when API_KEYS is unset (never on Lambda: see config.py).
DEFAULT_API_KEYS = "dev:dev-key:admin"


class Unauthorized(EngineError):
    """No key, or a key no client has."""

    code = "unauthorized"
    status = 401


class Forbidden(EngineError):
    """A valid key that may not call this route (the admin and test routes)."""

    code = "forbidden"
    status = 403


@dataclass(frozen=True)
class Client:
    """A caller of the API. `usage_key` names its usage plan key (its rate); it is not a secret."""

    name: str
    admin: bool = False
    usage_key: str = ""

    def context(self) -> dict[str, str]:
        """What an authorizer hands API Gateway (string values only): every later event carries it."""
        return {"client": self.name, "admin": "true" if self.admin else "false"}


def hash_key(key: str) -> str:
    return hashlib.sha256(key.encode("utf-8", "surrogatepass")).hexdigest()


def new_key() -> str:
    """A fresh API key: 32 random bytes, URL-safe."""
    return "sk_" + secrets.token_urlsafe(32)


class ClientDirectory(Protocol):
    def find(self, key_hash: str) -> Client | None:
        """The client whose key hashes to `key_hash`, or None."""


class MemoryClientDirectory:
    """Clients held in memory, by key hash (from API_KEYS, or given by a test)."""

    def __init__(self, clients: Mapping[str, Client] | None = None) -> None:
        self._by_hash = dict(clients or {})

    def find(self, key_hash: str) -> Client | None:
        for known, client in self._by_hash.items():
            if hmac.compare_digest(known, key_hash):
                return client
        return None


class ChainedDirectory:
    """The first directory that knows the key wins (API_KEYS first, then the table)."""

    def __init__(self, directories: Iterable[ClientDirectory]) -> None:
        self.directories = list(directories)

    def find(self, key_hash: str) -> Client | None:
        for directory in self.directories:
            client = directory.find(key_hash)
            if client is not None:
                return client
        return None


def parse_api_keys(text: str) -> dict[str, Client]:
    """`name:key[:admin],...` into clients by key hash; a malformed entry is an error at start."""
    clients: dict[str, Client] = {}
    for entry in (part.strip() for part in (text or "").split(",")):
        if not entry:
            continue
        parts = entry.split(":")
        if len(parts) not in (2, 3) or not parts[0] or not parts[1] or (len(parts) == 3 and parts[2] != "admin"):
            raise ValueError(f"API_KEYS entry {parts[0]!r}...: want name:key or name:key:admin")
        name, key = parts[0], parts[1]
        clients[hash_key(key)] = Client(name=name, admin=len(parts) == 3, usage_key=name)
    return clients


def key_from_request(headers: Mapping[str, Any] | None, query: Mapping[str, Any] | None) -> str | None:
    """The key a request carries: the `x-api-key` header, else `?apiKey=` (WebSocket connects)."""
    for name, value in (headers or {}).items():
        if str(name).lower() == "x-api-key" and value:
            return str(value)
    value = (query or {}).get("apiKey")
    return str(value) if value else None


def client_from_context(context: Mapping[str, Any] | None) -> Client | None:
    """The client an authorizer put in the event's requestContext.authorizer, if any."""
    authorizer = (context or {}).get("authorizer") or {}
    name = authorizer.get("client") or authorizer.get("principalId")
    if not name:
        return None
    return Client(name=str(name), admin=str(authorizer.get("admin", "")).lower() == "true")
