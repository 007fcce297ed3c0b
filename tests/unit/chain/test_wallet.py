"""The signer's key: a key file locally, a Secrets Manager secret deployed (moto plays AWS)."""

from __future__ import annotations

import json

import boto3
import pytest
from moto import mock_aws
from solders.keypair import Keypair

from chalicelib.landing import program_error
from chalicelib.wallet import WalletError, load_wallet


def _cli_file(keypair: Keypair) -> str:
    return json.dumps(list(bytes(keypair)))  # what `solana-keygen new -o FILE` writes


def test_the_wallet_comes_from_a_solana_cli_key_file(tmp_path):
    keypair = Keypair()
    path = tmp_path / "id.json"
    path.write_text(_cli_file(keypair))
    assert load_wallet(str(path), None).pubkey() == keypair.pubkey()


def test_a_missing_or_malformed_key_file_is_a_clear_error(tmp_path):
    with pytest.raises(WalletError, match="No such file"):
        load_wallet(str(tmp_path / "absent.json"), None)
    bad = tmp_path / "bad.json"
    bad.write_text("[1, 2, 3]")
    with pytest.raises(WalletError, match="64 integers"):
        load_wallet(str(bad), None)
    with pytest.raises(WalletError, match="WALLET_KEYPAIR_PATH"):
        load_wallet(None, None)


def test_deployed_the_wallet_comes_from_secrets_manager(monkeypatch):
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.delenv("AWS_ENDPOINT_URL", raising=False)
    keypair = Keypair()
    with mock_aws():
        client = boto3.client("secretsmanager")
        arn = client.create_secret(Name="solana-exec/wallet", SecretString=_cli_file(keypair))["ARN"]
        assert load_wallet(None, arn).pubkey() == keypair.pubkey()
        with pytest.raises(WalletError, match="ResourceNotFound"):
            load_wallet(None, "solana-exec/absent")


def test_program_errors_are_named_by_the_program_at_the_failing_instruction():
    dexes = {2: "raydium", 3: "meteora"}
    raydium = program_error({"InstructionError": [2, {"Custom": 6005}]}, dexes)
    meteora = program_error({"InstructionError": [3, {"Custom": 6003}]}, dexes)
    other = program_error({"InstructionError": [3, {"Custom": 6040}]}, dexes)
    assert (raydium.reason, meteora.reason, other.reason) == ("slippage_exceeded", "slippage_exceeded", "program_error")
    assert "raydium" in str(raydium) and "ExceededSlippage (6005)" in str(raydium)
    assert "ExceededAmountSlippageTolerance (6003)" in str(meteora)
    assert raydium.retryable and other.retryable
    assert program_error("InsufficientFundsForFee", dexes).reason == "transaction_error"
