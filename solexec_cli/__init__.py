"""solexec: a command-line client for the solana-exec engine, using only its public REST and WebSocket API."""

from __future__ import annotations

__all__ = ["__version__"]

__version__ = "0.1.0"
