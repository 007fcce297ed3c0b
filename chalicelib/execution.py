"""One attempt at executing an order: route, build, submit, confirm, each step a status.

Delivery is at least once, so every step starts from what the order item says:
a terminal order is left alone, and an order already `submitted` is confirmed with the
transaction it has rather than a second one.
"""

from __future__ import annotations

import base64
import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol

from chalicelib.chain import ChainSubmission, SwapChain
from chalicelib.errors import ExecutionError, PermanentExecutionError, RetryableExecutionError, StaleWrite
from chalicelib.failures import FailureRecord, FailureStore
from chalicelib.logs import logger
from chalicelib.market import (
    DEFAULT_TOKENS,
    MarketError,
    PoolNotOpen,
    RoutePlan,
    Token,
    TokenRegistry,
)
from chalicelib.metrics import record_confirmed, record_failed, record_retry
from chalicelib.orders import OrderRecord, Status, can_transition, plain_decimal, status_event, utc_now_iso
from chalicelib.ports import OrderStore
from chalicelib.publisher import StatusPublisher
from chalicelib.triggers import expired, floor_out, waiting_fields

__all__ = ["AttemptOutcome", "OrderExecutor"]


class Router(Protocol):
    """What execution needs of a market: the modelled one (Market) or the chain's (OnChainMarket)."""

    def route(self, token_in: Token, token_out: Token, amount_in: int) -> RoutePlan: ...


@dataclass(frozen=True)
class AttemptOutcome:
    """What the queue consumer must do with the message."""

    done: bool  # delete the message
    retry_in_s: int | None = None  # leave it, invisible this long
    reason: str = ""


class OrderExecutor:
    def __init__(
        self,
        store: OrderStore,
        publisher: StatusPublisher,
        market: Router,
        chain: SwapChain,
        retry_delays_s: tuple[int, ...],
        failures: FailureStore,
        registry: TokenRegistry = DEFAULT_TOKENS,
        lease_s: int = 30,
        clock_ms: Callable[[], int] = lambda: int(time.time() * 1000),
    ) -> None:
        self.lease_s = lease_s
        self.clock_ms = clock_ms
        self.failures = failures
        self.store = store
        self.publisher = publisher
        self.market = market
        self.chain = chain
        self.retry_delays_s = retry_delays_s
        self.registry = registry
        # Re-reads the pool registry (new pools and their mints); set by the wiring on a cluster.
        self.discover: Callable[[list[tuple[str, str]]], bool] | None = None

    @property
    def max_attempts(self) -> int:
        return len(self.retry_delays_s) + 1

    def run(
        self, order_id: str, receive_count: int, round_: int = 1, created: OrderRecord | None = None
    ) -> AttemptOutcome:
        """One delivery of the order's message.

        `created` is the order as the POST stored it, when the message carries it. On a
        first delivery it stands in for reading the item: the first write (`routing`) is
        conditional on the item's version, so it lands only if nothing has touched the
        order since; otherwise the order is read and handled like any redelivery.
        """
        presumed = created is not None and receive_count <= 1 and round_ == 1
        record = created if presumed else self.store.get(order_id)
        if record is None:
            logger.warning("message for unknown order dropped", extra={"orderId": order_id})
            return AttemptOutcome(done=True, reason="unknown_order")
        if record.status is Status.FAILED and round_ < int(record.details.get("redriveRound") or 0):
            # Moved back from the DLQ unchanged (StartMessageMoveTask): the redrive advanced
            # the order's round before the move (docs/decisions/013).
            round_ = int(record.details["redriveRound"])
        if record.status is Status.FAILED and round_ > record.round:
            record = record.with_(attempts=0)  # a redrive: a fresh round of attempts
        elif record.terminal or round_ < record.round:
            return AttemptOutcome(done=True, reason="already_terminal")
        leased_for_ms = int(record.details.get("leaseUntilMs") or 0) - self.clock_ms()
        if not record.terminal and leased_for_ms > 0:
            # Another delivery is executing this order right now (a duplicate message, or
            # a stranded-order re-queue); its lease is the function timeout. Come back after.
            return AttemptOutcome(done=False, retry_in_s=math.ceil(leased_for_ms / 1000), reason="leased")
        # A waiting order's trigger may come more than once (a pool not open yet, a re-send):
        # none of those deliveries attempted anything, so its first routing is attempt 1.
        attempt = 1 if record.status is Status.WAITING else max(1, receive_count)
        try:
            self._attempt(record, attempt, round_)
            return AttemptOutcome(done=True)
        except _NotOpenYet as wait:
            # A waiting order's only pool opens in a moment: this very message comes back then.
            return AttemptOutcome(done=False, retry_in_s=wait.retry_in_s, reason="pool_not_open")
        except StaleWrite:
            if presumed:
                return self.run(order_id, receive_count, round_)  # it moved since created: read it
            # Another delivery of this message moved the order; look again after a pause.
            return AttemptOutcome(
                done=False, retry_in_s=self.retry_delays_s[0] if self.retry_delays_s else 1, reason="stale"
            )
        except (RetryableExecutionError, PermanentExecutionError, MarketError) as exc:
            if record.request.conditional and _market_refused(exc):
                return self._back_to_waiting(order_id, _reason(exc), str(exc))
            return self._failed_attempt(order_id, attempt, exc)
        except Exception as exc:  # noqa: BLE001 - unknown faults are treated as transient
            logger.exception("attempt crashed", extra={"orderId": order_id, "attempt": attempt})
            return self._failed_attempt(order_id, attempt, exc)

    # -- the happy path ---------------------------------------------------------------

    def _attempt(self, record: OrderRecord, attempt: int, round_: int) -> None:
        if record.status is Status.SUBMITTED and record.details.get("txHash"):
            self._confirm(record, _plan_from(record, self.registry), _submission_from(record))
            return
        request = record.request
        if request.conditional and record.status is Status.PENDING:
            self._write(record, Status.WAITING, waiting_fields(record), {})  # the watcher takes it from here
            return
        if record.status is Status.WAITING and self.discover is not None:
            self.discover([(request.token_in, request.token_out)])  # a sniper's pair may have a pool now
        token_in = self.registry.resolve(request.token_in)
        token_out = self.registry.resolve(request.token_out)
        if record.status is Status.WAITING and (token_in is None or token_out is None):
            return  # not listed yet: still waiting
        if token_in is None or token_out is None:
            raise PermanentExecutionError("token no longer supported", reason="unsupported_token")
        if record.status is Status.WAITING:
            if expired(record, self.clock_ms()):
                self._write(record, Status.EXPIRED, {"reason": "expired"}, {})
                return
            try:
                plan = self.market.route(token_in, token_out, request.amount_in)
            except PoolNotOpen as exc:
                raise _NotOpenYet(max(1, math.ceil(exc.opens_at_s - self.clock_ms() / 1000))) from exc
            except MarketError:
                return  # no pool (yet) or no liquidity: still waiting
            if plan.amount_out < floor_out(request, token_out.decimals):
                return  # the price moved back before this delivery: still waiting
        else:
            plan = self.market.route(token_in, token_out, request.amount_in)
            if request.conditional and plan.amount_out < floor_out(request, token_out.decimals):
                # A retry after a failed attempt: the price is no longer at the order's limit.
                self._to_waiting(record, "price_moved", "the price moved past the order's limit before it filled")
                return
        quotes = [q.to_message(token_in, token_out) for q in plan.quotes]
        legs = [leg.to_message(token_in, token_out) for leg in plan.legs]
        previous_error = record.details.get("lastError") if attempt > 1 or round_ > 1 else None
        record = self._write(
            record,
            Status.ROUTING,
            {
                "attempt": attempt,
                "round": round_ if round_ > 1 else None,
                "quotes": quotes,
                "dex": plan.dex,
                "route": legs,
                "error": previous_error,
            },
            {"dex": plan.dex, "leaseUntilMs": self.clock_ms() + self.lease_s * 1000},
            attempts=attempt,
            round_=round_,
            redrive=round_ > record.round or record.status is Status.FAILED,
        )
        logger.info(
            "routed",
            extra={"orderId": record.order_id, "attempt": attempt, "dex": plan.dex, "quotes": quotes, "route": legs},
        )
        # A limit or sniper order's floor never lets the program fill below its price.
        min_out = max(request.min_amount_out(plan.amount_out), floor_out(request, token_out.decimals))
        min_out_text = plain_decimal(self.registry.to_decimal(token_out, min_out))
        record = self._write(record, Status.BUILDING, {"minAmountOut": min_out_text}, {})
        signed = self.chain.build(plan, min_out, memo=f"{record.order_id}/{round_}/{attempt}")
        if record.details.get("testFailure"):
            raise RetryableExecutionError(
                "simulated failure: the test harness drops every transaction", reason="test_failure"
            )
        submission = self.chain.submit(signed)
        # Write-ahead: the transaction is on the order before the chain can land it, so a
        # worker that dies from here on is followed by one that confirms this very one.
        record = self._write(
            record,
            Status.SUBMITTED,
            # The signed transaction itself, so anyone can check txHash is its signature.
            {"txHash": signed.signature, "dex": plan.dex, "transaction": base64.b64encode(signed.raw).decode()},
            {  # what a later delivery needs to confirm this very transaction (_plan_from, _submission_from)
                "txHash": signed.signature,
                "plan": plan.to_dict(quotes=False),
                "minAmountOutBase": str(min_out),
                "submittedAtMs": submission.submitted_at_ms,
                "quoteWaitMs": plan.quote_wait_ms,
                "confirmAtMs": submission.confirm_at_ms,
                # A real cluster: the signed bytes to rebroadcast, and when their blockhash expires.
                "rawTransaction": base64.b64encode(signed.raw).decode() if submission.raw else None,
                "lastValidBlockHeight": submission.last_valid_block_height,
            },
        )
        self._confirm(record, plan, submission)

    def _confirm(
        self, record: OrderRecord, plan: RoutePlan, submission: ChainSubmission, *, look_once: bool = False
    ) -> None:
        min_out = int(record.details["minAmountOutBase"])
        if look_once:  # the DLQ's reconcile, inside an API call: one look, no waiting for the chain
            fill = self.chain.settle(plan, min_out, submission)
        else:
            fill = self.chain.confirm(plan, min_out, submission)
        token_out = plan.token_out
        amount_out = plain_decimal(self.registry.to_decimal(token_out, fill.amount_out))
        executed_price = plain_decimal(fill.executed_price)
        fields: dict[str, Any] = {
            "txHash": submission.signature,
            "executedPrice": executed_price,
            "amountOut": amount_out,
            "dex": plan.dex,
            # What the simulation made this order wait, so a benchmark can tell the engine's own time apart.
            "simulatedDelayMs": {
                "quoteMs": int(record.details.get("quoteWaitMs", 0)),
                "chainMs": submission.confirm_at_ms - submission.submitted_at_ms,
            },
        }
        if fill.slot is not None:  # a real cluster: where it landed and what it cost (getTransaction)
            fields["slot"] = fill.slot
            fields["fee"] = fill.fee_lamports
            fields["computeUnits"] = fill.compute_units
            # No simulated delay: the wait is the cluster's own, from the write-ahead to the confirmation seen.
            fields["simulatedDelayMs"] = {
                "quoteMs": 0,
                "chainMs": max(0, fill.executed_at_ms - submission.submitted_at_ms),
            }
        # The item keeps what the history does not say: the figures are in the `confirmed` event.
        cleared = {**_RESUME_CLEARED, "error": None, "leaseUntilMs": None}
        written = self._write(record, Status.CONFIRMED, fields, cleared)
        simulated = fields["simulatedDelayMs"]
        record_confirmed(plan.dex, _elapsed_ms(written), simulated["quoteMs"] + simulated["chainMs"])
        logger.info("confirmed", extra={"orderId": record.order_id, **fields})

    def _write(
        self,
        record: OrderRecord,
        status: Status,
        fields: dict[str, Any],
        details: dict[str, Any],
        *,
        attempts: int | None = None,
        round_: int | None = None,
        redrive: bool = False,
    ) -> OrderRecord:
        if not can_transition(record.status, status, redrive=redrive):
            raise StaleWrite(f"order {record.order_id} cannot go from {record.status.value} to {status.value}")
        event = status_event(record.order_id, status, record.seq + 1, **fields)
        written = self.store.append_status(record, event, details, attempts=attempts, round_=round_)
        self.publisher.publish(written, event)
        return written

    # -- failures ---------------------------------------------------------------------

    def _failed_attempt(self, order_id: str, attempt: int, exc: Exception) -> AttemptOutcome:
        retryable = bool(getattr(exc, "retryable", True))
        reason = _reason(exc)
        message = str(exc) or reason
        error = {"attempt": attempt, "reason": reason, "message": message, "retryable": retryable, "at": utc_now_iso()}
        last = not retryable or attempt >= self.max_attempts
        # A transaction that may still land (the cluster did not answer) stays on the order:
        # the next delivery confirms that very one, and the last one leaves it to the DLQ.
        alive = bool(getattr(exc, "transaction_alive", False))
        if alive and last:
            logger.warning("attempt failed, transaction pending", extra={"orderId": order_id, "error": error})
            return AttemptOutcome(done=False, retry_in_s=0, reason=reason)
        logger.warning("attempt failed", extra={"orderId": order_id, "error": error, "final": last})
        for _ in range(3):  # the order may move under us (a duplicate delivery); re-read and retry
            record = self.store.get(order_id)
            if record is None or record.terminal:
                return AttemptOutcome(done=True, reason="already_terminal")
            errors = [*record.details.get("errors", []), error]
            try:
                if last:
                    # Status first, record second: a crash in between leaves a failed order
                    # whose DLQ message reconcile() gives its record (finish_dead_letter).
                    failed = self._fail(record, message, reason, attempt, errors)
                    self._record_failure(failed, retryable)
                else:
                    self.store.update_details(
                        record,
                        {
                            **({} if alive else _retire_transaction(record)),
                            "errors": errors,
                            "lastError": message,
                            "leaseUntilMs": None,
                        },
                    )
                break
            except StaleWrite:
                continue
        if last:
            record_failed(reason)
        else:
            record_retry()
        if last and not retryable:
            return AttemptOutcome(done=True, reason=reason)  # fails at once: no retries burned
        if last:
            return AttemptOutcome(done=False, retry_in_s=0, reason=reason)  # the redrive policy moves it to the DLQ
        return AttemptOutcome(done=False, retry_in_s=self.retry_delays_s[attempt - 1], reason=reason)

    def _back_to_waiting(self, order_id: str, reason: str, message: str) -> AttemptOutcome:
        """The market refused a triggered limit or sniper order: it waits again (or expires)."""
        logger.info("back to waiting", extra={"orderId": order_id, "reason": reason, "error": message})
        for _ in range(3):
            record = self.store.get(order_id)
            if record is None or record.terminal or record.status is Status.WAITING:
                return AttemptOutcome(done=True, reason=reason)
            try:
                self._to_waiting(record, reason, message)
            except StaleWrite:
                continue
            return AttemptOutcome(done=True, reason=reason)
        return AttemptOutcome(
            done=False, retry_in_s=self.retry_delays_s[0] if self.retry_delays_s else 1, reason="stale"
        )

    def _to_waiting(self, record: OrderRecord, reason: str, message: str) -> OrderRecord:
        """`routing|building|submitted -> waiting` (the transaction, if any, can never land: it failed)."""
        details = {**_RESUME_CLEARED, **_retire_transaction(record), "leaseUntilMs": None, "lastError": message}
        if expired(record, self.clock_ms()):
            return self._write(record, Status.EXPIRED, {"reason": "expired", "error": message}, details)
        fields = {**waiting_fields(record), "reason": reason, "error": message}
        return self._write(record, Status.WAITING, fields, details)

    def _fail(self, record: OrderRecord, message: str, reason: str, attempts: int, errors: list[Any]) -> OrderRecord:
        fields = {"error": message, "reason": reason, "attempts": attempts}
        details = {
            "errors": errors,
            "lastError": message,
            "error": message,
            "failureReason": reason,
            "leaseUntilMs": None,
        }
        return self._write(record, Status.FAILED, fields, details, attempts=attempts)

    def _record_failure(self, record: OrderRecord, retryable: bool) -> None:
        details = record.details
        self.failures.put(
            FailureRecord(
                order_id=record.order_id,
                original_order={
                    "orderId": record.order_id,
                    **record.request.to_public(),
                    "createdAt": record.created_at,
                },
                failure_reason=str(details.get("failureReason", "unknown")),
                attempts_made=record.attempts,
                failed_at=str(record.history[-1]["timestamp"]),
                last_error=str(details.get("lastError", "")),
                errors=list(details.get("errors", [])),
                round=record.round,
                retryable=retryable,
            )
        )

    def advance_round(self, order_id: str) -> int | None:
        """Before a redrive moves the order's message back: the round its next delivery runs in.

        The round is kept on the failed order (``redriveRound``), so a message moved back
        unchanged, still naming the old round, starts the new one (docs/decisions/013).
        None if the order is not failed (it has moved on, or is unknown).
        """
        for _ in range(5 if order_id else 0):
            record = self.store.get(order_id)
            if record is None or record.status is not Status.FAILED:
                return None
            pending = int(record.details.get("redriveRound") or 0)
            if pending > record.round:
                return pending  # advanced by an earlier redrive whose message has not arrived yet
            try:
                self.store.update_details(record, {"redriveRound": record.round + 1})
            except StaleWrite:
                continue
            return record.round + 1
        return None

    def finish_dead_letter(self, order_id: str) -> bool:
        """A message reached the DLQ: make its order terminal and give it a failure record.

        An order found `submitted` has a transaction on the chain: confirm that one
        (True: the message can go) rather than call it failed.
        """
        record = self.store.get(order_id)
        if record is None:
            return False
        if record.status is Status.CONFIRMED:
            return True
        if record.status is Status.SUBMITTED and record.details.get("txHash"):
            try:
                self._confirm(record, _plan_from(record, self.registry), _submission_from(record), look_once=True)
                return True
            except ExecutionError as exc:
                if getattr(exc, "transaction_alive", False):
                    # It may still land: no verdict yet; the next reconcile looks again.
                    logger.info("dead-lettered transaction still pending", extra={"orderId": order_id})
                    return False
                logger.warning(
                    "dead-lettered transaction did not confirm", extra={"orderId": order_id, "error": str(exc)}
                )
                record = self.store.get(order_id) or record
            except (MarketError, StaleWrite) as exc:
                logger.warning(
                    "dead-lettered transaction did not confirm", extra={"orderId": order_id, "error": str(exc)}
                )
                record = self.store.get(order_id) or record
        if not record.terminal:
            message = str(record.details.get("lastError") or "the worker stopped on its last attempt")
            error = {
                "attempt": record.attempts,
                "reason": "dead_lettered",
                "message": message,
                "retryable": True,
                "at": utc_now_iso(),
            }
            record = self._fail(
                record, message, "dead_lettered", record.attempts, [*record.details.get("errors", []), error]
            )
        self._record_failure(record, retryable=True)
        return False


# Only needed to resume a `submitted` order; cleared once it is terminal.
_RESUME_CLEARED: dict[str, Any] = {
    "plan": None,
    "minAmountOutBase": None,
    "submittedAtMs": None,
    "quoteWaitMs": None,
    "confirmAtMs": None,
    "rawTransaction": None,
    "lastValidBlockHeight": None,
}


def _elapsed_ms(record: OrderRecord) -> float:
    """From `pending` to the newest status, by the order's own timestamps."""
    first, last = record.history[0]["timestamp"], record.history[-1]["timestamp"]
    return (_epoch(last) - _epoch(first)) * 1000


def _epoch(text: str) -> float:
    return datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()


class _NotOpenYet(Exception):
    def __init__(self, retry_in_s: int) -> None:
        super().__init__(f"the pool opens in {retry_in_s} s")
        self.retry_in_s = retry_in_s


# Refusals by the market, not faults: the price is no longer at the order's limit.
_MARKET_REASONS = frozenset({"slippage_exceeded", "price_moved"})


def _reason(exc: Exception) -> str:
    return str(getattr(exc, "reason", "") or getattr(exc, "code", "") or type(exc).__name__)


def _market_refused(exc: Exception) -> bool:
    """The program (or the market) refused the floor; a transaction refused so can never land."""
    return _reason(exc) in _MARKET_REASONS and not getattr(exc, "transaction_alive", False)


def _retire_transaction(record: OrderRecord) -> dict[str, Any]:
    """A transaction that failed on chain is done with: the next attempt builds a new one."""
    tx_hash = record.details.get("txHash")
    if not tx_hash:
        return {}
    return {
        "txHash": None,
        "rawTransaction": None,
        "lastValidBlockHeight": None,
        "failedTransactions": [*record.details.get("failedTransactions", []), tx_hash],
    }


def _plan_from(record: OrderRecord, registry: TokenRegistry) -> RoutePlan:
    return RoutePlan.from_dict(record.details["plan"], registry)


def _submission_from(record: OrderRecord) -> ChainSubmission:
    return ChainSubmission(
        signature=record.details["txHash"],
        submitted_at_ms=int(record.details["submittedAtMs"]),
        confirm_at_ms=int(record.details["confirmAtMs"]),
        raw=base64.b64decode(record.details.get("rawTransaction") or ""),
        last_valid_block_height=_optional_int(record.details.get("lastValidBlockHeight")),
    )


def _optional_int(value: Any) -> int | None:
    return None if value is None else int(value)
