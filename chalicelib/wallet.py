"""The signer's key: a Solana CLI key file locally, an AWS Secrets Manager secret deployed.

Both hold the same thing: the 64-byte keypair as a JSON array of integers (what
`solana-keygen new -o FILE` writes). No key is ever derived from a seed here.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from solders.keypair import Keypair

__all__ = ["WalletError", "keypair_from_text", "load_wallet"]


class WalletError(Exception):
    """The wallet could not be loaded: a missing file or secret, or not a keypair."""


def keypair_from_text(text: str, where: str) -> Keypair:
    try:
        values = json.loads(text)
        if not (isinstance(values, list) and len(values) == 64 and all(isinstance(v, int) for v in values)):
            raise ValueError("want a JSON array of 64 integers")
        return Keypair.from_bytes(bytes(values))
    except ValueError as exc:
        raise WalletError(f"{where} is not a Solana keypair: {exc}") from exc


def _from_file(path: str) -> Keypair:
    try:
        text = Path(path).read_text()
    except OSError as exc:
        raise WalletError(f"WALLET_KEYPAIR_PATH {path}: {exc.strerror}") from exc
    return keypair_from_text(text, f"WALLET_KEYPAIR_PATH {path}")


def _from_secret(secret_id: str, client: Any = None) -> Keypair:
    if client is None:
        import boto3  # the AWS adapter's import, only when a secret is configured

        client = boto3.client("secretsmanager")
    try:
        answer = client.get_secret_value(SecretId=secret_id)
    except Exception as exc:
        raise WalletError(f"WALLET_SECRET_ID {secret_id}: {exc}") from exc
    return keypair_from_text(str(answer.get("SecretString") or ""), f"secret {secret_id}")


def load_wallet(keypair_path: str | None, secret_id: str | None, secrets_client: Any = None) -> Keypair:
    """The key file when WALLET_KEYPAIR_PATH is set, else the Secrets Manager secret."""
    if keypair_path:
        return _from_file(keypair_path)
    if secret_id:
        return _from_secret(secret_id, secrets_client)
    raise WalletError("a cluster needs a wallet: set WALLET_KEYPAIR_PATH (a key file) or WALLET_SECRET_ID")
