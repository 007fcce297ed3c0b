"""Solana JSON-RPC methods over the ledger, in the shapes Solana's RPC documentation gives.

`dispatch(request)` takes one decoded JSON-RPC request object and returns the response
object; transport (HTTP, batching) is the server's.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from solders.account import Account
from solders.hash import Hash
from solders.message import from_bytes_versioned
from solders.pubkey import Pubkey
from solders.signature import Signature
from solders.transaction import VersionedTransaction
from solders.transaction_metadata import FailedTransactionMetadata

from .ledger import Ledger, Rejected, error_json, ui_token_amount
from .shapes import (
    INVALID_PARAMS,
    account_json,
    decode_bytes,
    error_response,
    matches,
    meta_json,
    parsed_token_account,
    sim_value,
    transaction_json,
)
from .spl import TOKEN_2022_PROGRAM_ID, TOKEN_PROGRAM_ID, read_mint_decimals, read_token_account

__all__ = ["API_VERSION", "RpcMethods"]

API_VERSION = "2.2.0"
SOLANA_CORE = "2.2.0-localnet"
LAMPORTS_PER_SIGNATURE = 5_000

METHOD_NOT_FOUND = -32601
INVALID_REQUEST = -32600


def _param(params: list[Any], index: int, default: Any = None) -> Any:
    return params[index] if len(params) > index and params[index] is not None else default


def _config(params: list[Any], index: int) -> dict[str, Any]:
    value = _param(params, index, {})
    if not isinstance(value, dict):
        raise Rejected(INVALID_PARAMS, "Invalid params: configuration must be an object")
    return value


def _pubkey(value: Any) -> Pubkey:
    try:
        return Pubkey.from_string(value)
    except Exception as exc:
        raise Rejected(INVALID_PARAMS, f"Invalid param: Invalid pubkey {value!r}") from exc


def _signature(value: Any) -> Signature:
    try:
        return Signature.from_string(value)
    except Exception as exc:
        raise Rejected(INVALID_PARAMS, f"Invalid param: Invalid signature {value!r}") from exc


class RpcMethods:
    def __init__(self, ledger: Ledger) -> None:
        self.ledger = ledger
        self.methods: dict[str, Callable[[list[Any]], Any]] = {
            "getHealth": lambda p: "ok",
            "getVersion": lambda p: {"solana-core": SOLANA_CORE, "feature-set": 0},
            "getSlot": self.get_slot,
            "getBlockHeight": self.get_slot,
            "getEpochInfo": self.get_epoch_info,
            "getLatestBlockhash": self.get_latest_blockhash,
            "isBlockhashValid": self.is_blockhash_valid,
            "getBalance": self.get_balance,
            "getAccountInfo": self.get_account_info,
            "getMultipleAccounts": self.get_multiple_accounts,
            "getProgramAccounts": self.get_program_accounts,
            "getTokenAccountBalance": self.get_token_account_balance,
            "getTokenAccountsByOwner": self.get_token_accounts_by_owner,
            "getMinimumBalanceForRentExemption": self.get_minimum_balance,
            "getFeeForMessage": self.get_fee_for_message,
            "getRecentPrioritizationFees": self.get_recent_prioritization_fees,
            "requestAirdrop": self.request_airdrop,
            "sendTransaction": self.send_transaction,
            "simulateTransaction": self.simulate_transaction,
            "getSignatureStatuses": self.get_signature_statuses,
            "getTransaction": self.get_transaction,
            "getSignaturesForAddress": self.get_signatures_for_address,
        }

    # ------------------------------------------------------------ envelope
    def dispatch(self, request: Any) -> dict[str, Any]:
        request_id = request.get("id") if isinstance(request, dict) else None
        if not isinstance(request, dict) or not isinstance(request.get("method"), str):
            return error_response(request_id, INVALID_REQUEST, "Invalid request")
        method = self.methods.get(request["method"])
        if method is None:
            return error_response(request_id, METHOD_NOT_FOUND, "Method not found")
        params = request.get("params", [])
        if not isinstance(params, list):
            return error_response(request_id, INVALID_PARAMS, "Invalid params: expected an array")
        try:
            result = method(params)
        except Rejected as exc:
            return error_response(request_id, exc.code, exc.message, exc.data)
        return {"jsonrpc": "2.0", "result": result, "id": request_id}

    def _context(self, value: Any) -> dict[str, Any]:
        return {"context": {"apiVersion": API_VERSION, "slot": self.ledger.slot}, "value": value}

    # -------------------------------------------------------------- slots
    def get_slot(self, params: list[Any]) -> int:
        return self.ledger.commitment_slot(_config(params, 0).get("commitment", "finalized"))

    def get_epoch_info(self, params: list[Any]) -> dict[str, Any]:
        slot = self.ledger.commitment_slot(_config(params, 0).get("commitment", "finalized"))
        return {
            "absoluteSlot": slot,
            "blockHeight": slot,
            "epoch": 0,
            "slotIndex": slot,
            "slotsInEpoch": 432_000,
            "transactionCount": self.ledger.transaction_count,
        }

    def get_latest_blockhash(self, params: list[Any]) -> dict[str, Any]:
        blockhash, last_valid = self.ledger.latest_blockhash(_config(params, 0).get("commitment", "finalized"))
        return self._context({"blockhash": str(blockhash), "lastValidBlockHeight": last_valid})

    def is_blockhash_valid(self, params: list[Any]) -> dict[str, Any]:
        try:
            blockhash = Hash.from_string(_param(params, 0, ""))
        except Exception as exc:
            raise Rejected(INVALID_PARAMS, "Invalid param: Invalid blockhash") from exc
        return self._context(self.ledger.blockhash_valid(blockhash))

    # ----------------------------------------------------------- accounts
    def get_balance(self, params: list[Any]) -> dict[str, Any]:
        account = self.ledger.svm.get_account(_pubkey(_param(params, 0)))
        return self._context(account.lamports if account else 0)

    def _account_json(self, account: Account | None, config: dict[str, Any]) -> dict[str, Any] | None:
        parsed = None
        if account is not None and config.get("encoding") == "jsonParsed":
            balance = read_token_account(account)
            if balance is not None:
                decimals = read_mint_decimals(self.ledger.svm.get_account(balance.mint)) or 0
                parsed = parsed_token_account(account, balance, decimals)
        return account_json(account, config, parsed)

    def get_account_info(self, params: list[Any]) -> dict[str, Any]:
        config = _config(params, 1)
        account = self.ledger.svm.get_account(_pubkey(_param(params, 0)))
        return self._context(self._account_json(account, config))

    def get_multiple_accounts(self, params: list[Any]) -> dict[str, Any]:
        keys = _param(params, 0, [])
        if not isinstance(keys, list) or len(keys) > 100:
            raise Rejected(INVALID_PARAMS, "Invalid params: expected at most 100 pubkeys")
        config = _config(params, 1)
        config.setdefault("encoding", "base64")
        accounts = [self.ledger.svm.get_account(_pubkey(k)) for k in keys]
        return self._context([self._account_json(a, config) for a in accounts])

    def _program_accounts(self, program: Pubkey, filters: list[Any]) -> list[tuple[Pubkey, Account]]:
        found = []
        for address, account in self.ledger.svm.get_program_accounts(program):
            data = bytes(account.data)
            if all(matches(data, f) for f in filters):
                found.append((address, account))
        return found

    def get_program_accounts(self, params: list[Any]) -> Any:
        program = _pubkey(_param(params, 0))
        config = _config(params, 1)
        filters = config.get("filters", [])
        if not isinstance(filters, list):
            raise Rejected(INVALID_PARAMS, "Invalid params: filters must be an array")
        config.setdefault("encoding", "base64")
        rows = [
            {"pubkey": str(address), "account": self._account_json(account, config)}
            for address, account in self._program_accounts(program, filters)
        ]
        return self._context(rows) if config.get("withContext") else rows

    def get_token_account_balance(self, params: list[Any]) -> dict[str, Any]:
        account = self.ledger.svm.get_account(_pubkey(_param(params, 0)))
        balance = read_token_account(account)
        if balance is None:
            raise Rejected(INVALID_PARAMS, "Invalid param: could not find account")
        decimals = read_mint_decimals(self.ledger.svm.get_account(balance.mint)) or 0
        return self._context(ui_token_amount(balance.amount, decimals))

    def get_token_accounts_by_owner(self, params: list[Any]) -> dict[str, Any]:
        owner = _pubkey(_param(params, 0))
        which = _config(params, 1)
        config = _config(params, 2)
        config.setdefault("encoding", "base64")
        if "mint" in which:
            mint, programs = _pubkey(which["mint"]), [TOKEN_PROGRAM_ID, TOKEN_2022_PROGRAM_ID]
        elif "programId" in which:
            mint, programs = None, [_pubkey(which["programId"])]
        else:
            raise Rejected(INVALID_PARAMS, "Invalid params: expected {mint} or {programId}")
        rows = []
        for program in programs:
            for address, account in self._program_accounts(program, []):
                balance = read_token_account(account)
                if balance is None or balance.owner != owner or (mint is not None and balance.mint != mint):
                    continue
                rows.append({"pubkey": str(address), "account": self._account_json(account, config)})
        return self._context(rows)

    def get_minimum_balance(self, params: list[Any]) -> int:
        size = _param(params, 0)
        if not isinstance(size, int) or size < 0:
            raise Rejected(INVALID_PARAMS, "Invalid params: expected a data length")
        return int(self.ledger.svm.minimum_balance_for_rent_exemption(size))

    def get_fee_for_message(self, params: list[Any]) -> dict[str, Any]:
        raw = decode_bytes(_param(params, 0), "base64")
        try:
            message = from_bytes_versioned(raw)
        except Exception as exc:
            raise Rejected(INVALID_PARAMS, f"Invalid params: not a message: {exc}") from exc
        return self._context(message.header.num_required_signatures * LAMPORTS_PER_SIGNATURE)

    def get_recent_prioritization_fees(self, params: list[Any]) -> list[dict[str, int]]:
        addresses = _param(params, 0, [])
        if not isinstance(addresses, list) or len(addresses) > 128:
            raise Rejected(INVALID_PARAMS, "Invalid params: at most 128 account addresses")
        return self.ledger.prioritization_fees({_pubkey(a) for a in addresses})

    def request_airdrop(self, params: list[Any]) -> str:
        address = _pubkey(_param(params, 0))
        lamports = _param(params, 1)
        if not isinstance(lamports, int) or lamports <= 0:
            raise Rejected(INVALID_PARAMS, "Invalid params: lamports must be a positive integer")
        return str(self.ledger.airdrop(address, lamports))

    # -------------------------------------------------------- transactions
    def send_transaction(self, params: list[Any]) -> str:
        config = _config(params, 1)
        raw = decode_bytes(_param(params, 0), config.get("encoding", "base58"))
        return str(self.ledger.send(raw, skip_preflight=bool(config.get("skipPreflight", False))))

    def simulate_transaction(self, params: list[Any]) -> dict[str, Any]:
        config = _config(params, 1)
        raw = decode_bytes(_param(params, 0), config.get("encoding", "base58"))
        sig_verify = bool(config.get("sigVerify", False))
        replace = bool(config.get("replaceRecentBlockhash", False))
        if sig_verify and replace:
            raise Rejected(INVALID_PARAMS, "sigVerify may not be used with replaceRecentBlockhash")
        tx = self.ledger.parse(raw)
        replacement = None
        if replace:
            blockhash, last_valid = self.ledger.latest_blockhash("confirmed")
            replacement = {"blockhash": str(blockhash), "lastValidBlockHeight": last_valid}
        elif not self.ledger.blockhash_valid(tx.message.recent_blockhash):
            return self._context(sim_value("BlockhashNotFound", [], 0, None))
        if sig_verify and not all(tx.verify_with_results()):
            return self._context(sim_value("SignatureFailure", [], 0, None))
        result = self.ledger.simulate(tx, sig_verify=False)
        if isinstance(result, FailedTransactionMetadata):
            meta = result.meta()
            value = sim_value(error_json(result.err()), list(meta.logs()), meta.compute_units_consumed(), replacement)
        else:
            meta = result.meta()
            value = sim_value(None, list(meta.logs()), meta.compute_units_consumed(), replacement)
            value["accounts"] = self._simulated_accounts(config.get("accounts"), dict(result.post_accounts()))
        return self._context(value)

    def _simulated_accounts(self, wanted: Any, post: dict[Pubkey, Account]) -> list[Any] | None:
        """`accounts: {addresses, encoding}`: those accounts as the simulation left them."""
        if wanted is None:
            return None
        if not isinstance(wanted, dict) or not isinstance(wanted.get("addresses"), list):
            raise Rejected(INVALID_PARAMS, "Invalid params: accounts must be {addresses: [...]}")
        config = {"encoding": wanted.get("encoding", "base64")}
        keys = [_pubkey(a) for a in wanted["addresses"]]
        return [self._account_json(post.get(k) or self.ledger.svm.get_account(k), config) for k in keys]

    def get_signature_statuses(self, params: list[Any]) -> dict[str, Any]:
        signatures = _param(params, 0, [])
        if not isinstance(signatures, list) or len(signatures) > 256:
            raise Rejected(INVALID_PARAMS, "Invalid params: expected at most 256 signatures")
        search = bool(_config(params, 1).get("searchTransactionHistory", False))
        return self._context([self.ledger.status(_signature(s), search) for s in signatures])

    def get_signatures_for_address(self, params: list[Any]) -> list[dict[str, Any]]:
        address = _pubkey(_param(params, 0))
        config = _config(params, 1)
        limit = config.get("limit", 1000)
        if not isinstance(limit, int) or not 1 <= limit <= 1000:
            raise Rejected(INVALID_PARAMS, "Invalid limit; max 1000")
        commitment = config.get("commitment", "finalized")
        if commitment == "processed":
            raise Rejected(INVALID_PARAMS, "Method does not support commitment below `confirmed`")
        records = self.ledger.signatures_for(address, commitment)
        before, until = config.get("before"), config.get("until")
        if before:
            index = next((i for i, r in enumerate(records) if str(r.signature) == before), None)
            records = records[index + 1 :] if index is not None else []
        if until:
            index = next((i for i, r in enumerate(records) if str(r.signature) == until), None)
            records = records[:index] if index is not None else records
        rows = []
        for record in records[:limit]:
            status = self.ledger.status(record.signature, True) or {}
            rows.append(
                {
                    "signature": str(record.signature),
                    "slot": record.slot,
                    "err": record.err,
                    "memo": None,
                    "blockTime": record.block_time,
                    "confirmationStatus": status.get("confirmationStatus"),
                }
            )
        return rows

    def get_transaction(self, params: list[Any]) -> dict[str, Any] | None:
        signature = _signature(_param(params, 0))
        config = _param(params, 1, {})
        if isinstance(config, str):  # the old positional encoding form
            config = {"encoding": config}
        commitment = config.get("commitment", "finalized")
        if commitment == "processed":
            raise Rejected(INVALID_PARAMS, "Method does not support commitment below `confirmed`")
        record = self.ledger.record_at(signature, commitment)
        if record is None or not record.raw:
            return None
        tx = VersionedTransaction.from_bytes(record.raw)
        tx_version = tx.version()
        version = tx_version if isinstance(tx_version, int) else None
        if version is not None and config.get("maxSupportedTransactionVersion") is None:
            raise Rejected(
                -32015,
                "Transaction version (0) is not supported by the requesting client. "
                "Please try the request again with the following configuration parameter: "
                '"maxSupportedTransactionVersion": 0',
            )
        encoding = config.get("encoding", "json")
        out: dict[str, Any] = {
            "slot": record.slot,
            "blockTime": record.block_time,
            "meta": meta_json(record),
            "transaction": transaction_json(tx, record.raw, encoding),
            "version": version if version is not None else "legacy",
        }
        return out
