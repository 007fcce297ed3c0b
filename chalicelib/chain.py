"""A simulated Solana cluster: takes signed swaps, confirms them after a seeded latency.

Confirmation is a pure function of (signature, submit time, plan), so any process that
finds an order `submitted` can confirm that very transaction again, with the same result,
instead of sending a second one.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

from solders.hash import Hash
from solders.keypair import Keypair

from chalicelib.errors import RetryableExecutionError
from chalicelib.market import Fill, Market, RoutePlan, SignedSwap, build_swap_transaction

__all__ = ["ChainSubmission", "SimulatedChain", "SwapChain"]


@dataclass(frozen=True)
class ChainSubmission:
    signature: str
    submitted_at_ms: int
    confirm_at_ms: int
    raw: bytes = b""  # the signed transaction, for rebroadcasts (a real cluster)
    last_valid_block_height: int | None = None


class SwapChain(Protocol):
    """Build a plan's signed swap, record its submission, confirm it and say what it filled.

    SimulatedChain (this module) models it; chalicelib.landing.ChainLander lands it on a
    real cluster. `submit` puts nothing on the wire the executor has not written down.
    """

    def build(self, plan: RoutePlan, min_amount_out: int, memo: str = "") -> SignedSwap:
        """`memo` (the order and attempt) makes two equal orders two different transactions."""

    def submit(self, signed: SignedSwap) -> ChainSubmission: ...

    def confirm(self, plan: RoutePlan, min_amount_out: int, submission: ChainSubmission) -> Fill: ...

    def settle(self, plan: RoutePlan, min_amount_out: int, submission: ChainSubmission) -> Fill:
        """What became of a submission, at one look: its fill, or an error saying why not (yet)."""


class SimulatedChain:
    def __init__(
        self,
        market: Market,
        latency_ms: tuple[int, int],
        seed: int,
        clock_ms: Callable[[], int] = lambda: int(time.time() * 1000),
        sleep: Callable[[float], None] = time.sleep,
        drop_ppm: int = 0,
        expire_ppm: int = 0,
    ) -> None:
        self.drop_ppm = drop_ppm
        self.expire_ppm = expire_ppm
        self.market = market
        self.latency_ms = latency_ms
        self.clock_ms = clock_ms
        self.sleep = sleep
        self.payer = Keypair.from_seed(hashlib.sha256(f"solana-exec-payer:{seed}".encode()).digest())

    def build(self, plan: RoutePlan, min_amount_out: int, memo: str = "") -> SignedSwap:
        slot = self.clock_ms() // 400  # a slot every 400 ms, like mainnet
        blockhash = Hash.hash(f"slot:{slot}".encode())
        return build_swap_transaction(plan, min_amount_out, self.payer, blockhash)

    def submit(self, signed: SignedSwap) -> ChainSubmission:
        now = self.clock_ms()
        return ChainSubmission(signed.signature, now, now + self._latency(signed.signature))

    def _latency(self, signature: str) -> int:
        low, high = self.latency_ms
        if high <= low:
            return low
        spread = int.from_bytes(hashlib.sha256(signature.encode()).digest()[:4], "big")
        return low + spread % (high - low + 1)

    def confirm(self, plan: RoutePlan, min_amount_out: int, submission: ChainSubmission) -> Fill:
        """Wait for the slot that lands the transaction, then fill it at that moment's market.

        Failure modes are seeded by the signature, so a replayed run fails the same way:
        a dropped transaction (never lands) and an expired blockhash (too late for its slot).
        """
        wait_ms = submission.confirm_at_ms - self.clock_ms()
        if wait_ms > 0:
            self.sleep(wait_ms / 1000)
        draw = int.from_bytes(hashlib.sha256(f"fate:{submission.signature}".encode()).digest()[:4], "big") % 1_000_000
        if draw < self.drop_ppm:
            raise RetryableExecutionError("the transaction was dropped before it landed", reason="transaction_dropped")
        if draw < self.drop_ppm + self.expire_ppm:
            raise RetryableExecutionError("the transaction's blockhash expired", reason="blockhash_expired")
        return self.market.execute(plan, min_amount_out, now_ms=submission.confirm_at_ms)

    def settle(self, plan: RoutePlan, min_amount_out: int, submission: ChainSubmission) -> Fill:
        return self.confirm(plan, min_amount_out, submission)  # a pure function of the submission
