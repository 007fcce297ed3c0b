"""The cluster port over Solana JSON-RPC 2.0 on HTTP: the Lambda's way to any cluster.

Standard library only (http.client, one kept-alive connection per thread), so the Lambda
package stays lean. Shapes follow Solana's RPC documentation (solana.com/docs/rpc).
"""

from __future__ import annotations

import base64
import http.client
import itertools
import json
import threading
from typing import Any
from urllib.parse import urlsplit

from chalicelib.cluster import (
    Account,
    Blockhash,
    ClusterError,
    Commitment,
    SendRejected,
    SignatureStatus,
    Simulation,
    TokenBalance,
    TransactionDetails,
)

__all__ = ["RpcCluster", "parse_signature_status", "parse_transaction"]

_MAX_ACCOUNTS_PER_CALL = 100  # getMultipleAccounts' documented limit
_MAX_SIGNATURES_PER_CALL = 256  # getSignatureStatuses' documented limit
_NO_DATA = {"offset": 0, "length": 0}  # getProgramAccounts' dataSlice: the keys, none of the bytes


class RpcCluster:
    def __init__(self, url: str, timeout_s: float = 10.0) -> None:
        parts = urlsplit(url)
        if parts.scheme not in {"http", "https"} or not parts.hostname:
            raise ValueError(f"SOLANA_RPC_URL must be an http(s) URL, got {url!r}")
        self.url = url
        self._https = parts.scheme == "https"
        self._host = parts.hostname
        self._port = parts.port
        self._path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
        self._timeout_s = timeout_s
        self._local = threading.local()
        self._ids = itertools.count(1)

    # -- transport ----------------------------------------------------------------------

    def _connection(self) -> http.client.HTTPConnection:
        conn = getattr(self._local, "conn", None)
        if conn is None:
            cls = http.client.HTTPSConnection if self._https else http.client.HTTPConnection
            conn = cls(self._host, self._port, timeout=self._timeout_s)
            self._local.conn = conn
        return conn

    def _post(self, body: bytes) -> bytes:
        headers = {"Content-Type": "application/json"}
        for retry in (False, True):  # a kept-alive connection the server closed: redial once
            conn = self._connection()
            try:
                conn.request("POST", self._path, body, headers)
                response = conn.getresponse()
                payload = response.read()
            except (OSError, http.client.HTTPException) as exc:
                conn.close()
                self._local.conn = None
                if retry:
                    raise ClusterError(f"RPC {self.url} unreachable: {exc}") from exc
                continue
            if response.status >= 500 or response.status == 429:
                raise ClusterError(f"RPC answered HTTP {response.status}", code=response.status)
            return payload
        raise ClusterError(f"RPC {self.url} unreachable")  # pragma: no cover - loop always returns or raises

    def call(self, method: str, params: list[Any] | None = None) -> Any:
        request = {"jsonrpc": "2.0", "id": next(self._ids), "method": method, "params": params or []}
        payload = self._post(json.dumps(request).encode())
        try:
            answer = json.loads(payload)
        except ValueError as exc:
            raise ClusterError(f"RPC {method}: not JSON: {payload[:200]!r}") from exc
        error = answer.get("error")
        if error is not None:
            code, message, data = error.get("code"), str(error.get("message", "")), error.get("data")
            if method == "sendTransaction":
                raise SendRejected(f"sendTransaction: {message}", code=code, data=data)
            raise ClusterError(f"RPC {method}: {message}", code=code, data=data)
        return answer.get("result")

    # -- the port ----------------------------------------------------------------------

    def latest_blockhash(self, commitment: Commitment = "confirmed") -> Blockhash:
        value = self.call("getLatestBlockhash", [{"commitment": commitment}])["value"]
        return Blockhash(str(value["blockhash"]), int(value["lastValidBlockHeight"]))

    def block_height(self, commitment: Commitment = "confirmed") -> int:
        return int(self.call("getBlockHeight", [{"commitment": commitment}]))

    def send_transaction(self, raw: bytes, *, skip_preflight: bool = False) -> str:
        config: dict[str, Any] = {"encoding": "base64", "skipPreflight": skip_preflight, "maxRetries": 0}
        if not skip_preflight:
            config["preflightCommitment"] = "confirmed"
        return str(self.call("sendTransaction", [base64.b64encode(raw).decode(), config]))

    def simulate_transaction(self, raw: bytes, *, sig_verify: bool = False) -> Simulation:
        config = {"encoding": "base64", "sigVerify": sig_verify, "commitment": "confirmed"}
        value = self.call("simulateTransaction", [base64.b64encode(raw).decode(), config])["value"]
        units = value.get("unitsConsumed")
        return Simulation(value.get("err"), list(value.get("logs") or []), None if units is None else int(units))

    def signature_statuses(
        self, signatures: list[str], *, search_history: bool = False
    ) -> list[SignatureStatus | None]:
        result: list[SignatureStatus | None] = []
        for start in range(0, len(signatures), _MAX_SIGNATURES_PER_CALL):
            chunk = signatures[start : start + _MAX_SIGNATURES_PER_CALL]
            value = self.call("getSignatureStatuses", [chunk, {"searchTransactionHistory": search_history}])["value"]
            result += [parse_signature_status(v) for v in value]
        return result

    def transaction(self, signature: str, commitment: Commitment = "confirmed") -> TransactionDetails | None:
        config = {"encoding": "json", "commitment": commitment, "maxSupportedTransactionVersion": 0}
        return parse_transaction(self.call("getTransaction", [signature, config]))

    def accounts(self, addresses: list[str], commitment: Commitment = "confirmed") -> list[Account | None]:
        result: list[Account | None] = []
        for start in range(0, len(addresses), _MAX_ACCOUNTS_PER_CALL):
            chunk = addresses[start : start + _MAX_ACCOUNTS_PER_CALL]
            value = self.call("getMultipleAccounts", [chunk, {"encoding": "base64", "commitment": commitment}])["value"]
            result += [_parse_account(v) for v in value]
        return result

    def program_account_keys(self, program: str, filters: list[dict[str, Any]]) -> list[str]:
        """getProgramAccounts with `filters` (dataSize, memcmp), keys only (a zero dataSlice)."""
        config = {"encoding": "base64", "commitment": "confirmed", "filters": filters, "dataSlice": _NO_DATA}
        return [str(row["pubkey"]) for row in self.call("getProgramAccounts", [program, config]) or []]

    def recent_prioritization_fees(self, addresses: list[str]) -> list[int]:
        return _fees(self.call("getRecentPrioritizationFees", [addresses[:128]]))


def _fees(value: list[dict[str, Any]] | None) -> list[int]:
    return [int(item["prioritizationFee"]) for item in value or []]


def _parse_account(value: dict[str, Any] | None) -> Account | None:
    if value is None:
        return None
    data = value["data"]
    raw = base64.b64decode(data[0]) if isinstance(data, list) else base64.b64decode(data)
    return Account(str(value["owner"]), int(value["lamports"]), raw, bool(value.get("executable", False)))


def parse_signature_status(value: dict[str, Any] | None) -> SignatureStatus | None:
    if value is None:
        return None
    confirmations = value.get("confirmations")
    return SignatureStatus(
        slot=int(value["slot"]),
        confirmations=None if confirmations is None else int(confirmations),
        err=value.get("err"),
        confirmation_status=value.get("confirmationStatus"),
    )


def _token_balances(items: list[dict[str, Any]] | None) -> list[TokenBalance]:
    return [
        TokenBalance(
            account_index=int(b["accountIndex"]),
            mint=str(b["mint"]),
            owner=b.get("owner"),
            amount=int(b["uiTokenAmount"]["amount"]),
            decimals=int(b["uiTokenAmount"]["decimals"]),
        )
        for b in items or []
    ]


def parse_transaction(result: dict[str, Any] | None) -> TransactionDetails | None:
    """A getTransaction result (json encoding); None when the cluster does not know it."""
    if result is None:
        return None
    meta = result.get("meta") or {}
    units = meta.get("computeUnitsConsumed")
    block_time = result.get("blockTime")
    return TransactionDetails(
        slot=int(result["slot"]),
        err=meta.get("err"),
        fee=int(meta.get("fee", 0)),
        compute_units=None if units is None else int(units),
        logs=list(meta.get("logMessages") or []),
        pre_token_balances=_token_balances(meta.get("preTokenBalances")),
        post_token_balances=_token_balances(meta.get("postTokenBalances")),
        block_time=None if block_time is None else int(block_time),
    )
