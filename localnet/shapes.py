"""The JSON shapes of Solana's RPC: accounts, simulation results, transactions, errors."""

from __future__ import annotations

import base64
import json
from typing import Any

from solders.account import Account
from solders.rpc.responses import RpcSimulateTransactionResult
from solders.transaction import VersionedTransaction

from .b58 import b58decode, b58encode
from .ledger import Rejected, TxRecord, ui_token_amount
from .spl import TOKEN_PROGRAM_ID, TokenBalance

__all__ = [
    "INVALID_PARAMS",
    "account_json",
    "decode_bytes",
    "error_response",
    "matches",
    "meta_json",
    "parsed_token_account",
    "sim_value",
    "transaction_json",
]

INVALID_PARAMS = -32602


def decode_bytes(value: Any, encoding: str) -> bytes:
    if not isinstance(value, str):
        raise Rejected(INVALID_PARAMS, "Invalid params: transaction must be an encoded string")
    if encoding == "base64":
        try:
            return base64.b64decode(value, validate=True)
        except ValueError as exc:
            raise Rejected(INVALID_PARAMS, f"invalid transaction: invalid base64 encoding: {exc}") from exc
    if encoding == "base58":
        try:
            return b58decode(value)
        except ValueError as exc:
            raise Rejected(INVALID_PARAMS, "invalid transaction: invalid base58 encoding") from exc
    raise Rejected(INVALID_PARAMS, f"Invalid params: unsupported encoding {encoding!r}")


def account_json(
    account: Account | None, config: dict[str, Any], parsed: dict[str, Any] | None = None
) -> dict[str, Any] | None:
    if account is None:
        return None
    data = bytes(account.data)
    encoding = config.get("encoding", "base58")
    data_slice = config.get("dataSlice")
    if isinstance(data_slice, dict):
        offset, length = int(data_slice.get("offset", 0)), int(data_slice.get("length", 0))
        data = data[offset : offset + length]
    encoded: Any
    if encoding == "jsonParsed" and not data_slice:
        encoded = parsed or [base64.b64encode(data).decode(), "base64"]
    elif encoding == "base58":
        if len(data) > 128:
            raise Rejected(
                INVALID_PARAMS,
                "Encoded binary (base 58) data should be less than 128 bytes, please use Base64 encoding.",
            )
        encoded = [b58encode(data), "base58"]
    elif encoding in ("base64", "jsonParsed"):
        encoded = [base64.b64encode(data).decode(), "base64"]
    else:
        raise Rejected(INVALID_PARAMS, f"Invalid params: unsupported encoding {encoding!r}")
    return {
        "data": encoded,
        "executable": account.executable,
        "lamports": account.lamports,
        "owner": str(account.owner),
        "rentEpoch": 18_446_744_073_709_551_615,
        "space": len(bytes(account.data)),
    }


def parsed_token_account(account: Account, balance: TokenBalance, decimals: int) -> dict[str, Any]:
    """A token account in `jsonParsed` encoding."""
    program = "spl-token" if account.owner == TOKEN_PROGRAM_ID else "spl-token-2022"
    return {
        "program": program,
        "parsed": {
            "info": {
                "isNative": str(balance.mint) == "So11111111111111111111111111111111111111112",
                "mint": str(balance.mint),
                "owner": str(balance.owner),
                "state": "initialized",
                "tokenAmount": ui_token_amount(balance.amount, decimals),
            },
            "type": "account",
        },
        "space": len(bytes(account.data)),
    }


def matches(data: bytes, spec: Any) -> bool:
    if not isinstance(spec, dict):
        raise Rejected(INVALID_PARAMS, "Invalid params: bad filter")
    if "dataSize" in spec:
        return len(data) == int(spec["dataSize"])
    memcmp = spec.get("memcmp")
    if isinstance(memcmp, dict):
        offset = int(memcmp.get("offset", 0))
        wanted = decode_bytes(memcmp.get("bytes", ""), memcmp.get("encoding", "base58"))
        return data[offset : offset + len(wanted)] == wanted
    raise Rejected(INVALID_PARAMS, "Invalid params: bad filter")


def sim_value(err: Any, logs: list[str], units: int, replacement: dict[str, Any] | None) -> dict[str, Any]:
    value = RpcSimulateTransactionResult(err=None, logs=logs, accounts=None, units_consumed=units, return_data=None)
    out: dict[str, Any] = json.loads(value.to_json())
    out["err"] = err
    out["replacementBlockhash"] = replacement
    return out


def meta_json(record: TxRecord) -> dict[str, Any]:
    return {
        "err": record.err,
        "status": {"Ok": None} if record.err is None else {"Err": record.err},
        "fee": record.fee,
        "preBalances": record.pre_balances,
        "postBalances": record.post_balances,
        "innerInstructions": record.inner,
        "logMessages": record.logs,
        "preTokenBalances": [row.to_json() for row in record.pre_token],
        "postTokenBalances": [row.to_json() for row in record.post_token],
        "rewards": [],
        "loadedAddresses": {"writable": [], "readonly": []},
        "computeUnitsConsumed": record.compute_units,
    }


def transaction_json(tx: VersionedTransaction, raw: bytes, encoding: str) -> Any:
    if encoding == "base64":
        return [base64.b64encode(raw).decode(), "base64"]
    if encoding == "base58":
        return [b58encode(raw), "base58"]
    if encoding not in ("json", "jsonParsed"):
        raise Rejected(INVALID_PARAMS, f"Invalid params: unsupported encoding {encoding!r}")
    message = tx.message
    header = message.header
    body: dict[str, Any] = {
        "accountKeys": [str(k) for k in message.account_keys],
        "header": {
            "numRequiredSignatures": header.num_required_signatures,
            "numReadonlySignedAccounts": header.num_readonly_signed_accounts,
            "numReadonlyUnsignedAccounts": header.num_readonly_unsigned_accounts,
        },
        "instructions": [
            {
                "programIdIndex": ix.program_id_index,
                "accounts": list(ix.accounts),
                "data": b58encode(bytes(ix.data)),
                "stackHeight": None,
            }
            for ix in message.instructions
        ],
        "recentBlockhash": str(message.recent_blockhash),
    }
    lookups = getattr(message, "address_table_lookups", None)
    if lookups is not None:
        body["addressTableLookups"] = [
            {
                "accountKey": str(lookup.account_key),
                "writableIndexes": list(lookup.writable_indexes),
                "readonlyIndexes": list(lookup.readonly_indexes),
            }
            for lookup in lookups
        ]
    return {"signatures": [str(s) for s in tx.signatures], "message": body}


def error_response(request_id: Any, code: int, message: str, data: Any = None) -> dict[str, Any]:
    error: dict[str, Any] = {"code": code, "message": message}
    if data is not None:
        error["data"] = data
    return {"jsonrpc": "2.0", "error": error, "id": request_id}
