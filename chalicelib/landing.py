"""Landing swaps on a real cluster the way production engines do.

build:   read the pools now, compile the legs behind a compute-budget pair, simulate
         (a program error becomes the attempt's error, retryable with a fresh quote),
         set the compute-unit limit from the simulation plus a margin and a priority fee
         (configured price, capped in lamports), sign.
submit:  nothing on the wire: the executor writes the signed transaction on the order
         first (write-ahead), then `confirm` sends it.
confirm: send, then poll the signature; rebroadcast the same bytes until it is
         confirmed or the blockhash's last valid block height passes. On expiry the
         old signature is looked up once more with history before the attempt fails,
         so a new transaction is built only when the old one can never land.
The fill is what the program paid: the wallet's token balance changes in getTransaction.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from solders.compute_budget import set_compute_unit_limit, set_compute_unit_price
from solders.hash import Hash
from solders.instruction import Instruction
from solders.keypair import Keypair
from solders.message import MessageV0
from solders.pubkey import Pubkey
from solders.transaction import VersionedTransaction

from chalicelib.chain import ChainSubmission
from chalicelib.cluster import Blockhash, Cluster, ClusterError, SendRejected, SignatureStatus, TransactionDetails
from chalicelib.errors import RetryableExecutionError
from chalicelib.logs import logger
from chalicelib.market import Fill, RoutePlan, SignedSwap
from chalicelib.market.onchain import OnChainMarket
from chalicelib.market.plan import whole_price
from chalicelib.market.transaction import leg_floors

__all__ = ["ChainLander", "LandingConfig", "ProgramError", "TransactionPending", "program_error"]

_MAX_COMPUTE_UNITS = 1_400_000
MEMO_PROGRAM = Pubkey.from_string("MemoSq4gqABAXKb96qnH8TysNcWxMyWCqXgDLGmfcHr")  # SPL Memo v2

# Custom errors worth a name (raydium-cp-swap error.rs; DLMM IDL 0.12 "errors").
_KNOWN_ERRORS = {
    ("raydium", 6005): ("slippage_exceeded", "ExceededSlippage"),
    ("meteora", 6003): ("slippage_exceeded", "ExceededAmountSlippageTolerance"),
    ("meteora", 6004): ("slippage_exceeded", "ExceededBinSlippageTolerance"),
}


@dataclass(frozen=True)
class LandingConfig:
    priority_fee_microlamports: int = 10_000  # per compute unit: the floor, and what an idle cluster gets
    priority_fee_percentile: int = 75  # of the recent fees paid to write the legs' pools
    priority_fee_cap_lamports: int = 100_000  # the most one transaction pays on top of its base fee
    compute_unit_margin_pct: int = 15
    compute_unit_margin_min: int = 5_000
    poll_interval_s: float = 0.4
    rebroadcast_interval_s: float = 2.0
    blockhash_reuse_s: float = 1.0
    unreachable_after_s: float = 15.0  # no answer from the cluster this long: leave the attempt (tx kept)
    commitment: str = "confirmed"


class ProgramError(RetryableExecutionError):
    """A program refused the transaction (simulation, preflight or on chain)."""

    def __init__(self, message: str, reason: str, err: Any, logs: list[str] | None = None) -> None:
        super().__init__(message, reason=reason)
        self.err = err
        self.logs = logs or []


class TransactionPending(RetryableExecutionError):
    """The cluster could not say what became of a sent transaction: it may still land."""

    transaction_alive = True

    def __init__(self, message: str) -> None:
        super().__init__(message, reason="cluster_unavailable")


def program_error(err: Any, instruction_dexes: dict[int, str], logs: list[str] | None = None) -> ProgramError:
    """Name a TransactionError: `{"InstructionError": [i, {"Custom": n}]}` by the program at i."""
    if isinstance(err, dict) and "InstructionError" in err:
        index, inner = err["InstructionError"]
        dex = instruction_dexes.get(int(index), "program")
        if isinstance(inner, dict) and "Custom" in inner:
            code = int(inner["Custom"])
            reason, name = _KNOWN_ERRORS.get((dex, code), ("program_error", f"custom error {code}"))
            text = f"{dex} refused the swap: {name} ({code})"
            return ProgramError(text, reason, err, logs)
        return ProgramError(f"{dex} refused the swap: {inner}", "program_error", err, logs)
    return ProgramError(f"the transaction failed: {err}", "transaction_error", err, logs)


class ChainLander:
    def __init__(
        self,
        cluster: Cluster,
        market: OnChainMarket,
        wallet: Keypair | Callable[[], Keypair],
        config: LandingConfig | None = None,
        clock_ms: Callable[[], int] = lambda: time.time_ns() // 1_000_000,
        sleep: Callable[[float], None] = time.sleep,
        owner: str | None = None,
    ) -> None:
        """`wallet` may be a loader, called on the first build only (a secret fetched when
        the function signs, not by every function that only reads); `owner` is its public key
        when known without it."""
        self.cluster = cluster
        self.market = market
        self._wallet = wallet if isinstance(wallet, Keypair) else None
        self._load_wallet = None if isinstance(wallet, Keypair) else wallet
        self._owner = owner
        self.config = config or LandingConfig()
        self.clock_ms = clock_ms
        self.sleep = sleep
        self._latest: tuple[int, Blockhash] | None = None

    @property
    def wallet(self) -> Keypair:
        if self._wallet is None:
            assert self._load_wallet is not None
            self._wallet = self._load_wallet()
        return self._wallet

    @property
    def wallet_address(self) -> str:
        return self._owner or str(self.wallet.pubkey())

    # -- build ---------------------------------------------------------------------------

    def _compile(self, swaps: list[Instruction], cu_limit: int, cu_price: int, blockhash: Hash) -> VersionedTransaction:
        instructions = [set_compute_unit_limit(cu_limit), set_compute_unit_price(cu_price), *swaps]
        message = MessageV0.try_compile(self.wallet.pubkey(), instructions, [], blockhash)
        return VersionedTransaction(message, [self.wallet])

    def market_price(self, pools: list[str]) -> int:
        """The configured price, or the recent fees' percentile for these pools when higher."""
        floor = self.config.priority_fee_microlamports
        try:
            fees = sorted(self.cluster.recent_prioritization_fees(pools))
        except ClusterError as exc:
            logger.warning("prioritization fees unavailable", extra={"error": str(exc)})
            return floor
        if not fees:
            return floor
        index = min(len(fees) - 1, len(fees) * self.config.priority_fee_percentile // 100)
        return max(floor, fees[index])

    def priority_price(self, cu_limit: int, price: int | None = None) -> int:
        """Micro-lamports per compute unit, lowered so the priority fee stays within the cap."""
        cap = self.config.priority_fee_cap_lamports * 1_000_000 // max(cu_limit, 1)
        wanted = self.config.priority_fee_microlamports if price is None else price
        return max(0, min(wanted, cap))

    def build(self, plan: RoutePlan, min_amount_out: int, memo: str = "") -> SignedSwap:
        swaps = self.market.swap_instructions(plan, leg_floors(plan, min_amount_out), self.wallet.pubkey())
        if memo:
            # Two equal orders would otherwise sign the very same message (one signature,
            # one execution): the memo names the order and attempt, so each is its own.
            swaps.append(Instruction(MEMO_PROGRAM, memo.encode(), []))
        dexes = {2 + i: leg.dex for i, leg in enumerate(plan.legs)}
        latest = self._blockhash()
        blockhash = Hash.from_string(latest.blockhash)
        price = self.market_price(self.market.pool_addresses(plan))
        trial = self._compile(swaps, _MAX_COMPUTE_UNITS, self.priority_price(_MAX_COMPUTE_UNITS, price), blockhash)
        sim = self.cluster.simulate_transaction(bytes(trial))
        if sim.err is not None:
            raise program_error(sim.err, dexes, sim.logs)
        used = sim.units_consumed or _MAX_COMPUTE_UNITS
        margin = max(used * self.config.compute_unit_margin_pct // 100, self.config.compute_unit_margin_min)
        cu_limit = min(_MAX_COMPUTE_UNITS, used + margin)
        tx = self._compile(swaps, cu_limit, self.priority_price(cu_limit, price), blockhash)
        return SignedSwap(
            signature=str(tx.signatures[0]),
            raw=bytes(tx),
            program_ids=tuple(self.market.program_of(leg.dex) for leg in plan.legs),
            last_valid_block_height=latest.last_valid_block_height,
        )

    def _blockhash(self) -> Blockhash:
        """The cluster's latest blockhash, asked at most every `blockhash_reuse_s`.

        A blockhash lives ~150 blocks (about a minute); reusing one for a second costs a
        second of that life and saves a round trip per order. Equal orders stay distinct
        transactions through their memo.
        """
        now = self.clock_ms()
        cached = self._latest
        if cached is None or now - cached[0] > self.config.blockhash_reuse_s * 1000:
            cached = (now, self.cluster.latest_blockhash())
            self._latest = cached
        return cached[1]

    def submit(self, signed: SignedSwap) -> ChainSubmission:
        now = self.clock_ms()
        return ChainSubmission(signed.signature, now, now, signed.raw, signed.last_valid_block_height)

    # -- confirm -------------------------------------------------------------------------

    def _send(self, submission: ChainSubmission, first: bool, dexes: dict[int, str]) -> None:
        if not submission.raw:
            return  # an order written before raw transactions were kept: only look it up
        try:
            self.cluster.send_transaction(submission.raw, skip_preflight=not first)
        except SendRejected as exc:
            err = exc.err
            if isinstance(err, dict) and "InstructionError" in err:
                raise program_error(err, dexes, exc.logs) from exc
            # Blockhash not found, already processed, ...: the status poll decides.
            logger.info("send refused", extra={"txHash": submission.signature, "error": str(exc)})
        except ClusterError as exc:
            logger.warning("send failed", extra={"txHash": submission.signature, "error": str(exc)})

    def _status(self, signature: str, since_answer_ms: int) -> tuple[bool, SignatureStatus | None]:
        """(answered, status); a cluster silent for `unreachable_after_s` ends the attempt."""
        try:
            return True, self.cluster.signature_statuses([signature])[0]
        except ClusterError as exc:
            logger.warning("status lookup failed", extra={"txHash": signature, "error": str(exc)})
            if self.clock_ms() - since_answer_ms >= self.config.unreachable_after_s * 1000:
                raise
            return False, None

    def confirm(self, plan: RoutePlan, min_amount_out: int, submission: ChainSubmission) -> Fill:
        try:
            return self._land(plan, submission)
        except ClusterError as exc:
            raise TransactionPending(f"{submission.signature}: the cluster did not answer ({exc})") from exc

    def settle(self, plan: RoutePlan, min_amount_out: int, submission: ChainSubmission) -> Fill:
        """One look, with history: the fill if it landed; a program error if it failed; if it
        is unknown, `blockhash_expired` once it can land no more, else TransactionPending."""
        dexes = {2 + i: leg.dex for i, leg in enumerate(plan.legs)}
        try:
            status = self.cluster.signature_statuses([submission.signature], search_history=True)[0]
            if status is not None and status.err is not None:
                raise program_error(status.err, dexes)
            if status is not None:
                return self._fill(plan, submission.signature)
            last_valid = submission.last_valid_block_height
            if last_valid is not None and self.cluster.block_height() > last_valid:
                raise RetryableExecutionError(
                    f"blockhash expired at block height {last_valid} before {submission.signature} landed",
                    reason="blockhash_expired",
                )
        except ClusterError as exc:
            raise TransactionPending(f"{submission.signature}: the cluster did not answer ({exc})") from exc
        raise TransactionPending(f"{submission.signature} has not landed yet; its blockhash is still valid")

    def _land(self, plan: RoutePlan, submission: ChainSubmission) -> Fill:
        dexes = {2 + i: leg.dex for i, leg in enumerate(plan.legs)}
        signature = submission.signature
        last_valid = submission.last_valid_block_height
        last_send_ms: int | None = None
        last_answer_ms = self.clock_ms()
        first = True
        while True:
            now = self.clock_ms()
            if last_send_ms is None or now - last_send_ms >= self.config.rebroadcast_interval_s * 1000:
                self._send(submission, first, dexes)
                if not first:
                    logger.info("rebroadcast", extra={"txHash": signature})
                first = False
                last_send_ms = now
            answered, status = self._status(signature, last_answer_ms)
            if answered:
                last_answer_ms = self.clock_ms()
            if status is not None:
                if status.err is not None:
                    raise program_error(status.err, dexes)
                if status.reached("confirmed"):
                    return self._fill(plan, signature)
            height = self._height()
            if last_valid is not None and height is not None and height > last_valid:
                # Expired: it can land no more. Look once more, with history, before giving it up.
                status = self.cluster.signature_statuses([signature], search_history=True)[0]
                if status is not None and status.err is None:
                    return self._fill(plan, signature)
                if status is not None:
                    raise program_error(status.err, dexes)
                self._latest = None  # never build on it again
                raise RetryableExecutionError(
                    f"blockhash expired at block height {last_valid} before {signature} landed",
                    reason="blockhash_expired",
                )
            self.sleep(self.config.poll_interval_s)

    def _height(self) -> int | None:
        try:
            return self.cluster.block_height()
        except ClusterError:
            return None

    def _fill(self, plan: RoutePlan, signature: str) -> Fill:
        details: TransactionDetails | None = None
        for _ in range(10):  # a status can be seen a moment before the transaction is served
            details = self.cluster.transaction(signature)
            if details is not None:
                break
            self.sleep(self.config.poll_interval_s)
        if details is None:
            raise TransactionPending(f"{signature} confirmed but getTransaction does not find it yet")
        if details.err is not None:
            raise program_error(details.err, {2 + i: leg.dex for i, leg in enumerate(plan.legs)}, details.logs)
        wallet = self.wallet_address
        amount_out = details.token_change(wallet, plan.token_out.mint)
        spent = -details.token_change(wallet, plan.token_in.mint)
        if spent != plan.amount_in:
            logger.warning(
                "wallet spent a different amount than the order",
                extra={"txHash": signature, "spent": spent, "amountIn": plan.amount_in},
            )
        return Fill(
            amount_out=amount_out,
            executed_price=whole_price(plan.token_in, plan.token_out, plan.amount_in, amount_out),
            legs=plan.legs,
            executed_at_ms=self.clock_ms(),
            slot=details.slot,
            fee_lamports=details.fee,
            compute_units=details.compute_units,
        )
