"""The cluster port's in-memory twin: the real programs on an in-process LiteSVM.

For unit tests: no sockets, no clock. Block height moves only when `advance()` is
called (or by `slots_per_poll` on each block_height read, so a confirmation loop sees
time pass); the current blockhash stays valid for `valid_slots` after it was issued and
`advance` past that replaces it, as a real cluster's would expire. `drop_next_sends`
makes the next sends vanish, as a dropped send does; the same signature never executes
twice. Token balance changes are read around each transaction like an RPC node's meta.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass, field
from typing import Any

from solders.litesvm import LiteSVM
from solders.pubkey import Pubkey
from solders.transaction import VersionedTransaction
from solders.transaction_status import InstructionErrorCustom, TransactionErrorInstructionError

from chalicelib.cluster import (
    Account,
    Blockhash,
    Commitment,
    SendRejected,
    SignatureStatus,
    Simulation,
    TokenBalance,
    TransactionDetails,
)

__all__ = ["SvmCluster"]

_TOKEN_PROGRAMS = {
    "TokenkegQfeZyiNwAJbNbGKPFXCWuBvf9Ss623VQ5DA",
    "TokenzQdBNbLqP5VEhdkAS6EPFLC1PazqKqHvCHmMxQD",
}
_FEE_PER_SIGNATURE = 5_000


def _error_json(err: Any) -> Any:
    """A solders TransactionError in the JSON shape an RPC node gives it."""
    if err is None:
        return None
    if isinstance(err, TransactionErrorInstructionError):
        inner = err.err
        detail: Any = {"Custom": int(inner.code)} if isinstance(inner, InstructionErrorCustom) else _name(inner)
        return {"InstructionError": [int(err.index), detail]}
    return _name(err)


def _name(value: Any) -> str:
    return str(value).rsplit(".", 1)[-1]  # a unit variant: TransactionErrorType.BlockhashNotFound


@dataclass
class _Landed:
    details: TransactionDetails
    status: SignatureStatus


@dataclass
class SvmCluster:
    svm: LiteSVM
    valid_slots: int = 150
    slots_per_poll: int = 0
    drop_next_sends: int = 0
    height: int = 1
    prioritization_fees: list[int] = field(default_factory=list)  # what recent_prioritization_fees reports
    sends: list[str] = field(default_factory=list)  # every signature sent, in order, rebroadcasts too
    landed: dict[str, _Landed] = field(default_factory=dict)
    _issued_at: int = 1
    _base_slot: int = 0

    def __post_init__(self) -> None:
        self._base_slot = int(self.svm.get_clock().slot)

    # -- time ----------------------------------------------------------------------------

    def advance(self, slots: int = 1) -> None:
        self.height += slots
        self.svm.warp_to_slot(self._base_slot + self.height)
        if self.height > self._issued_at + self.valid_slots:
            self.svm.expire_blockhash()
            self._issued_at = self.height

    def latest_blockhash(self, commitment: Commitment = "confirmed") -> Blockhash:
        return Blockhash(str(self.svm.latest_blockhash()), self._issued_at + self.valid_slots)

    def block_height(self, commitment: Commitment = "confirmed") -> int:
        if self.slots_per_poll:
            self.advance(self.slots_per_poll)
        return self.height

    # -- transactions ----------------------------------------------------------------------

    def _token_balances(self, keys: list[Pubkey]) -> list[TokenBalance]:
        balances = []
        for index, key in enumerate(keys):
            account = self.svm.get_account(key)
            if account is None or str(account.owner) not in _TOKEN_PROGRAMS:
                continue
            data = bytes(account.data)
            if not (len(data) == 165 or (len(data) > 165 and data[165] == 2)):
                continue  # a mint, not a token account
            mint = Pubkey.from_bytes(data[0:32])
            mint_account = self.svm.get_account(mint)
            decimals = bytes(mint_account.data)[44] if mint_account is not None else 0
            amount = struct.unpack_from("<Q", data, 64)[0]
            balances.append(TokenBalance(index, str(mint), str(Pubkey.from_bytes(data[32:64])), amount, decimals))
        return balances

    def send_transaction(self, raw: bytes, *, skip_preflight: bool = False) -> str:
        tx = VersionedTransaction.from_bytes(raw)
        signature = str(tx.signatures[0])
        self.sends.append(signature)
        if signature in self.landed:
            return signature  # already processed: never twice
        if not skip_preflight:
            sim = self.simulate_transaction(raw)
            if sim.err is not None:
                message = "Transaction simulation failed"
                if sim.err == "BlockhashNotFound":
                    message += ": Blockhash not found"
                raise SendRejected(message, code=-32002, data={"err": sim.err, "logs": sim.logs})
        if self.drop_next_sends > 0:
            self.drop_next_sends -= 1
            return signature
        keys = list(tx.message.account_keys)
        pre = self._token_balances(keys)
        result = self.svm.send_transaction(tx)
        err = _error_json(result.err()) if hasattr(result, "err") else None
        if err == "BlockhashNotFound":
            return signature  # never lands, like a real cluster's answer to a stale blockhash
        meta = result.meta() if hasattr(result, "meta") else result
        details = TransactionDetails(
            slot=self._base_slot + self.height,
            err=err,
            fee=_FEE_PER_SIGNATURE * len(tx.signatures),
            compute_units=int(meta.compute_units_consumed()),
            logs=list(meta.logs()),
            pre_token_balances=pre,
            post_token_balances=self._token_balances(keys),
        )
        self.landed[signature] = _Landed(
            details, SignatureStatus(self._base_slot + self.height, None, err, "confirmed")
        )
        return signature

    def simulate_transaction(self, raw: bytes, *, sig_verify: bool = False) -> Simulation:
        result = self.svm.simulate_transaction(VersionedTransaction.from_bytes(raw))
        err = _error_json(result.err()) if hasattr(result, "err") else None
        meta = result.meta()
        return Simulation(err, list(meta.logs()), int(meta.compute_units_consumed()))

    def signature_statuses(
        self, signatures: list[str], *, search_history: bool = False
    ) -> list[SignatureStatus | None]:
        return [self.landed[s].status if s in self.landed else None for s in signatures]

    def transaction(self, signature: str, commitment: Commitment = "confirmed") -> TransactionDetails | None:
        found = self.landed.get(signature)
        return found.details if found else None

    # -- accounts --------------------------------------------------------------------------

    def accounts(self, addresses: list[str], commitment: Commitment = "confirmed") -> list[Account | None]:
        result: list[Account | None] = []
        for address in addresses:
            account = self.svm.get_account(Pubkey.from_string(address))
            if account is None or (account.lamports == 0 and not account.data):
                result.append(None)
            else:
                result.append(Account(str(account.owner), account.lamports, bytes(account.data), account.executable))
        return result

    def recent_prioritization_fees(self, addresses: list[str]) -> list[int]:
        return list(self.prioritization_fees)
