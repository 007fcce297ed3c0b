"""Keypair files in the Solana CLI's format: a JSON array of the 64 secret-key bytes."""

from __future__ import annotations

import json
import os
from pathlib import Path

from solders.keypair import Keypair

__all__ = ["load_or_create_keypair"]


def load_or_create_keypair(path: str | Path) -> Keypair:
    """The keypair at `path`; a new random one written there (mode 0600) if there is none."""
    path = Path(path)
    if path.exists():
        return Keypair.from_bytes(bytes(json.loads(path.read_text())))
    keypair = Keypair()
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as out:
        json.dump(list(bytes(keypair)), out)
    return keypair
