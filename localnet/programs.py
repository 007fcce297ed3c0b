"""Where the venue programs' binaries and the mainnet account fixtures are found."""

from __future__ import annotations

import os
from pathlib import Path

__all__ = ["PROJECT_DIR", "accounts_dir", "programs_dir"]

PROJECT_DIR = Path(__file__).resolve().parents[1]


def _shared(sub: str) -> Path | None:
    """`shared/solana/<sub>` beside the project or beside any folder above it (worktrees sit deeper)."""
    for folder in [PROJECT_DIR, *PROJECT_DIR.parents]:
        candidate = folder.parent / "shared" / "solana" / sub
        if candidate.is_dir():
            return candidate
    return None


def programs_dir(explicit: str | None = None) -> Path | None:
    """SOLANA_PROGRAMS_DIR, else ../shared/solana/programs, else .localnet/programs (`make solana-programs`)."""
    value = explicit or os.environ.get("SOLANA_PROGRAMS_DIR")
    if value:
        path = Path(value)
        return path if path.is_dir() else None
    dumped = PROJECT_DIR / ".localnet" / "programs"
    return _shared("programs") or (dumped if dumped.is_dir() else None)


def accounts_dir(explicit: str | None = None) -> Path | None:
    value = explicit or os.environ.get("SOLANA_ACCOUNTS_DIR")
    if value:
        path = Path(value)
        return path if path.is_dir() else None
    return _shared("accounts")


def missing_programs(directory: Path | None, files: list[str]) -> list[str]:
    if directory is None:
        return files
    return [f for f in files if not (directory / f).is_file()]
