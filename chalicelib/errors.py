"""Domain errors. Only the edges (app handlers) turn them into HTTP or WebSocket errors."""

from __future__ import annotations

__all__ = [
    "EngineError",
    "ExecutionError",
    "IdempotencyConflict",
    "InvalidOrder",
    "OrderNotFound",
    "PermanentExecutionError",
    "RetryableExecutionError",
    "StaleWrite",
]


class EngineError(Exception):
    """Base of every error the engine raises on purpose."""

    code = "engine_error"
    status = 400

    def __init__(self, message: str, *, field: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.field = field


class InvalidOrder(EngineError):
    """The order request breaks a rule of the contract; nothing is stored."""

    code = "invalid_order"

    def __init__(self, message: str, *, field: str | None = None, code: str | None = None) -> None:
        super().__init__(message, field=field)
        if code:
            self.code = code


class OrderNotFound(EngineError):
    """No order has that id."""

    code = "not_found"
    status = 404


class IdempotencyConflict(EngineError):
    """The Idempotency-Key was used before with a different body."""

    code = "idempotency_conflict"
    status = 409


class StaleWrite(Exception):
    """A conditional status write lost a race: somebody else moved the order first."""


class ExecutionError(Exception):
    """An attempt to execute an order failed."""

    retryable = False
    reason = "execution_error"


class RetryableExecutionError(ExecutionError):
    """Worth another attempt: venue down, quote expired, slippage breached, timeouts."""

    retryable = True

    def __init__(self, message: str, reason: str = "retryable_error") -> None:
        super().__init__(message)
        self.reason = reason


class PermanentExecutionError(ExecutionError):
    """Can never succeed: retrying would only burn attempts."""

    retryable = False

    def __init__(self, message: str, reason: str = "permanent_error") -> None:
        super().__init__(message)
        self.reason = reason
