"""The cluster's ledger: one LiteSVM, with slots, expiring blockhashes, a landing queue,
signature statuses and executed-transaction records, as a validator behind an RPC node
would keep them.

Single-threaded by design: the RPC server calls it from its event loop only.
"""

from __future__ import annotations

import hashlib
import heapq
import json
import random
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from solders.account import Account
from solders.clock import Clock
from solders.hash import Hash
from solders.litesvm import LiteSVM
from solders.pubkey import Pubkey
from solders.rpc.responses import RpcSimulateTransactionResult
from solders.signature import Signature
from solders.transaction import VersionedTransaction
from solders.transaction_metadata import FailedTransactionMetadata, TransactionMetadata
from solders.transaction_status import (
    TransactionErrorFieldless,
    TransactionErrorInstructionError,
    TransactionErrorInsufficientFundsForRent,
)

from .b58 import b58encode
from .faults import Faults
from .spl import read_mint_decimals, read_token_account

__all__ = ["CONFIRMED_AFTER_SLOTS", "FINALIZED_AFTER_SLOTS", "Ledger", "Rejected", "TxRecord", "error_json"]

CONFIRMED_AFTER_SLOTS = 1  # a supermajority's votes arrive about a slot after the block
FINALIZED_AFTER_SLOTS = 32  # rooted: 32 confirmed blocks on top
STATUS_CACHE_SLOTS = 300  # statuses without searchTransactionHistory: recent slots only


class Rejected(Exception):
    """A send or preflight the cluster refuses; carries the JSON-RPC error."""

    def __init__(self, code: int, message: str, data: Any = None) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.data = data


def error_json(err: Any) -> Any:
    """A TransactionError in the JSON shape RPC uses ("BlockhashNotFound", {"InstructionError": [0, ...]})."""
    if err is None:
        return None
    result = RpcSimulateTransactionResult(err=err, logs=None, accounts=None, units_consumed=None, return_data=None)
    return json.loads(result.to_json())["err"]


@dataclass
class TokenRow:
    account_index: int
    mint: str
    owner: str
    program: str
    amount: int
    decimals: int

    def to_json(self) -> dict[str, Any]:
        return {
            "accountIndex": self.account_index,
            "mint": self.mint,
            "owner": self.owner,
            "programId": self.program,
            "uiTokenAmount": ui_token_amount(self.amount, self.decimals),
        }


def ui_token_amount(amount: int, decimals: int) -> dict[str, Any]:
    whole, frac = divmod(amount, 10**decimals) if decimals else (amount, 0)
    text = f"{whole}.{frac:0{decimals}d}".rstrip("0").rstrip(".") if decimals else str(whole)
    return {"amount": str(amount), "decimals": decimals, "uiAmount": float(text), "uiAmountString": text}


@dataclass
class TxRecord:
    """An executed (landed) transaction, kept for getTransaction and getSignatureStatuses."""

    signature: Signature
    raw: bytes
    slot: int
    block_time: int
    err: Any  # RPC JSON shape, None on success
    logs: list[str]
    compute_units: int
    fee: int
    pre_balances: list[int]
    post_balances: list[int]
    pre_token: list[TokenRow]
    post_token: list[TokenRow]
    inner: list[dict[str, Any]] = field(default_factory=list)
    account_keys: tuple[Pubkey, ...] = ()
    writable_keys: tuple[Pubkey, ...] = ()
    unit_price: int = 0  # micro-lamports per compute unit (SetComputeUnitPrice), 0 if none


@dataclass(order=True)
class _Pending:
    land_slot: int
    seq: int
    tx: VersionedTransaction = field(compare=False)
    raw: bytes = field(compare=False)


def _is_landed_error(err: Any) -> bool:
    """Errors with which a transaction still lands in a block (fee charged); others never land."""
    return isinstance(err, TransactionErrorInstructionError | TransactionErrorInsufficientFundsForRent)


class Ledger:
    def __init__(
        self,
        svm: LiteSVM,
        *,
        valid_slots: int = 150,
        seed: int = 0,
        faults: Faults | None = None,
        wall_clock: Callable[[], float] = time.time,
        start_slot: int = 1,
    ) -> None:
        self.svm = svm
        self.valid_slots = valid_slots
        self.seed = seed
        self.faults = faults or Faults()
        self.rng = random.Random(seed)
        self.wall_clock = wall_clock
        self.slot = 0
        self.blockhash_slot: dict[Hash, int] = {}
        self.slot_blockhash: dict[int, Hash] = {}
        self.pending: list[_Pending] = []  # a heap: (landing slot, send order)
        self.pending_signatures: set[Signature] = set()
        self.records: dict[Signature, TxRecord] = {}
        self.sent = 0
        self.dropped = 0
        self.transaction_count = 0
        svm.with_blockhash_check(False)  # validity (150 slots) is ours: LiteSVM knows one blockhash
        svm.with_sigverify(True)
        self.advance_to(start_slot)

    # ------------------------------------------------------------------ time
    @property
    def block_height(self) -> int:
        return self.slot  # no skipped slots locally

    def _blockhash_for(self, slot: int) -> Hash:
        return Hash(hashlib.sha256(f"localnet|{self.seed}|{slot}".encode()).digest())

    def advance_to(self, slot: int) -> None:
        """Move to `slot`: new blockhash, clock to wall time, then land what is due."""
        while self.slot < slot:
            self.slot += 1
            blockhash = self._blockhash_for(self.slot)
            self.blockhash_slot[blockhash] = self.slot
            self.slot_blockhash[self.slot] = blockhash
            old = self.slot - self.valid_slots - FINALIZED_AFTER_SLOTS - 1
            if old in self.slot_blockhash:
                self.blockhash_slot.pop(self.slot_blockhash.pop(old), None)
        self.svm.warp_to_slot(self.slot)
        c = self.svm.get_clock()
        self.svm.set_clock(
            Clock(self.slot, c.epoch_start_timestamp, c.epoch, c.leader_schedule_epoch, int(self.wall_clock()))
        )
        self._land_due()

    def tick(self) -> None:
        self.advance_to(self.slot + 1)

    def commitment_slot(self, commitment: str | None) -> int:
        if commitment == "processed":
            return self.slot
        if commitment == "confirmed":
            return max(1, self.slot - CONFIRMED_AFTER_SLOTS)
        return max(1, self.slot - FINALIZED_AFTER_SLOTS)  # finalized, the RPC default

    def latest_blockhash(self, commitment: str | None = None) -> tuple[Hash, int]:
        """A blockhash and the last block height at which a transaction using it can land."""
        slot = self.commitment_slot(commitment)
        while slot not in self.slot_blockhash:
            slot += 1
        return self.slot_blockhash[slot], slot + self.valid_slots

    def blockhash_valid(self, blockhash: Hash) -> bool:
        issued = self.blockhash_slot.get(blockhash)
        return issued is not None and self.block_height <= issued + self.valid_slots

    # --------------------------------------------------------------- sending
    def parse(self, raw: bytes) -> VersionedTransaction:
        try:
            tx = VersionedTransaction.from_bytes(raw)
            tx.sanitize()
        except Exception as exc:
            raise Rejected(-32602, f"invalid transaction: failed to deserialize VersionedTransaction: {exc}") from exc
        return tx

    def send(self, raw: bytes, *, skip_preflight: bool = False) -> Signature:
        """Accept a signed transaction for landing a few slots later; its signature."""
        tx = self.parse(raw)
        signature = tx.signatures[0]
        if not skip_preflight:
            if not all(tx.verify_with_results()):
                raise Rejected(-32003, "Transaction signature verification failure")
            if signature in self.records:
                self._preflight_failed(TransactionErrorFieldless.AlreadyProcessed, [], 0)
            if not self.blockhash_valid(tx.message.recent_blockhash):
                self._preflight_failed(TransactionErrorFieldless.BlockhashNotFound, [], 0)
            result = self.simulate(tx, sig_verify=False)
            if isinstance(result, FailedTransactionMetadata):
                meta = result.meta()
                self._preflight_failed(result.err(), list(meta.logs()), meta.compute_units_consumed())
        self.sent += 1
        if self.faults.should_drop(str(signature), self.rng):
            self.dropped += 1
            return signature
        if signature in self.pending_signatures or signature in self.records:
            return signature
        low, high = self.faults.land_delay_slots
        delay = max(1, self.rng.randint(low, high))
        heapq.heappush(self.pending, _Pending(self.slot + delay, self.sent, tx, bytes(raw)))
        self.pending_signatures.add(signature)
        return signature

    def _preflight_failed(self, err: Any, logs: list[str], units: int) -> None:
        err_json = error_json(err)
        raise Rejected(
            -32002,
            f"Transaction simulation failed: {_describe(err_json)}",
            {
                "err": err_json,
                "logs": logs,
                "accounts": None,
                "unitsConsumed": units,
                "returnData": None,
                "innerInstructions": None,
            },
        )

    def simulate(self, tx: VersionedTransaction, *, sig_verify: bool) -> Any:
        self.svm.with_sigverify(sig_verify)
        try:
            return self.svm.simulate_transaction(tx)
        finally:
            self.svm.with_sigverify(True)

    def _land_due(self) -> None:
        while self.pending and self.pending[0].land_slot <= self.slot:
            item = heapq.heappop(self.pending)
            self.pending_signatures.discard(item.tx.signatures[0])
            self._execute(item.tx, item.raw)

    def _execute(self, tx: VersionedTransaction, raw: bytes) -> None:
        signature = tx.signatures[0]
        if signature in self.records or not self.blockhash_valid(tx.message.recent_blockhash):
            return  # a duplicate, or expired while in flight: never executes
        keys = list(tx.message.account_keys)
        pre_accounts = [self.svm.get_account(k) for k in keys]
        result = self.svm.send_transaction(tx)
        if isinstance(result, FailedTransactionMetadata):
            err = result.err()
            if not _is_landed_error(err):
                return
            meta: TransactionMetadata = result.meta()
        else:
            err, meta = None, result
        post_accounts = [self.svm.get_account(k) for k in keys]
        self.transaction_count += 1
        self.records[signature] = TxRecord(
            signature=signature,
            raw=raw,
            slot=self.slot,
            block_time=int(self.wall_clock()),
            err=error_json(err),
            logs=list(meta.logs()),
            compute_units=int(meta.compute_units_consumed()),
            fee=int(meta.fee()),
            pre_balances=[a.lamports if a else 0 for a in pre_accounts],
            post_balances=[a.lamports if a else 0 for a in post_accounts],
            pre_token=self._token_rows(pre_accounts),
            post_token=self._token_rows(post_accounts),
            inner=_inner_json(meta),
            account_keys=tuple(keys),
            writable_keys=_writable_keys(tx),
            unit_price=_unit_price(tx),
        )

    def _token_rows(self, accounts: list[Account | None]) -> list[TokenRow]:
        rows = []
        for index, account in enumerate(accounts):
            balance = read_token_account(account)
            if balance is None:
                continue
            decimals = read_mint_decimals(self.svm.get_account(balance.mint)) or 0
            rows.append(
                TokenRow(index, str(balance.mint), str(balance.owner), str(balance.program), balance.amount, decimals)
            )
        return rows

    def airdrop(self, address: Pubkey, lamports: int) -> Signature:
        """Credit lamports at once (a faucet's transfer); the airdrop's signature has a status."""
        account = self.svm.get_account(address)
        before = account.lamports if account else 0
        if account is None:
            account = Account(0, b"", Pubkey.from_string("11111111111111111111111111111111"), False)
        self.svm.set_account(
            address, Account(before + lamports, bytes(account.data), account.owner, account.executable)
        )
        signature = Signature(hashlib.sha512(f"airdrop|{address}|{self.slot}|{self.sent}".encode()).digest())
        self.sent += 1
        self.records[signature] = TxRecord(
            signature,
            b"",
            self.slot,
            int(self.wall_clock()),
            None,
            [],
            0,
            0,
            [before],
            [before + lamports],
            [],
            [],
            account_keys=(address,),
        )
        return signature

    # --------------------------------------------------------------- reading
    def status(self, signature: Signature, search_history: bool) -> dict[str, Any] | None:
        record = self.records.get(signature)
        if record is None:
            return None
        if not search_history and self.slot - record.slot > STATUS_CACHE_SLOTS:
            return None
        depth = self.slot - record.slot
        if depth >= FINALIZED_AFTER_SLOTS:
            confirmations, level = None, "finalized"
        else:
            confirmations, level = depth, "confirmed" if depth >= CONFIRMED_AFTER_SLOTS else "processed"
        return {
            "slot": record.slot,
            "confirmations": confirmations,
            "err": record.err,
            "status": {"Ok": None} if record.err is None else {"Err": record.err},
            "confirmationStatus": level,
        }

    def prioritization_fees(self, accounts: set[Pubkey]) -> list[dict[str, int]]:
        """Per recent slot (150), the lowest unit price paid by a transaction landed in it
        (writing any of `accounts`, if given); 0 for slots without one, as the RPC reports."""
        first = max(1, self.slot - 149)
        lowest: dict[int, int] = {}
        for record in reversed(self.records.values()):
            if record.slot < first:
                break
            if accounts and not accounts.intersection(record.writable_keys):
                continue
            lowest[record.slot] = min(lowest.get(record.slot, record.unit_price), record.unit_price)
        return [{"slot": slot, "prioritizationFee": lowest.get(slot, 0)} for slot in range(first, self.slot + 1)]

    def signatures_for(self, address: Pubkey, commitment: str | None) -> list[TxRecord]:
        """Landed transactions that name `address`, newest first (down to `commitment`)."""
        top = self.commitment_slot(commitment or "finalized")
        return [r for r in reversed(self.records.values()) if r.slot <= top and address in r.account_keys]

    def record_at(self, signature: Signature, commitment: str | None) -> TxRecord | None:
        record = self.records.get(signature)
        if record is None or record.slot > self.commitment_slot(commitment or "finalized"):
            return None
        return record


COMPUTE_BUDGET_PROGRAM = Pubkey.from_string("ComputeBudget111111111111111111111111111111")


def _writable_keys(tx: VersionedTransaction) -> tuple[Pubkey, ...]:
    """The static keys the message locks for writing (from its header, as the runtime reads it)."""
    header, keys = tx.message.header, list(tx.message.account_keys)
    signed, unsigned_end = header.num_required_signatures, len(keys) - header.num_readonly_unsigned_accounts
    signed_writable = signed - header.num_readonly_signed_accounts
    return tuple(k for i, k in enumerate(keys) if i < signed_writable or signed <= i < unsigned_end)


def _unit_price(tx: VersionedTransaction) -> int:
    keys = tx.message.account_keys
    for ix in tx.message.instructions:
        data = bytes(ix.data)
        if keys[ix.program_id_index] == COMPUTE_BUDGET_PROGRAM and len(data) == 9 and data[0] == 3:
            return int.from_bytes(data[1:9], "little")
    return 0


def _describe(err: Any) -> str:
    if isinstance(err, dict) and "InstructionError" in err:
        index, detail = err["InstructionError"]
        if isinstance(detail, dict) and "Custom" in detail:
            return f"Error processing Instruction {index}: custom program error: {hex(detail['Custom'])}"
        return f"Error processing Instruction {index}: {detail}"
    if err == "BlockhashNotFound":
        return "Blockhash not found"
    if err == "AlreadyProcessed":
        return "This transaction has already been processed"
    return str(err)


def _inner_json(meta: TransactionMetadata) -> list[dict[str, Any]]:
    out = []
    for index, group in enumerate(meta.inner_instructions()):
        if not group:
            continue
        out.append(
            {
                "index": index,
                "instructions": [
                    {
                        "programIdIndex": inner.instruction().program_id_index,
                        "accounts": list(inner.instruction().accounts),
                        "data": b58encode(bytes(inner.instruction().data)),
                        "stackHeight": inner.stack_height(),
                    }
                    for inner in group
                ],
            }
        )
    return out
