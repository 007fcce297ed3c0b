"""Structured JSON logs: one event per line, always with the orderId when there is one."""

from __future__ import annotations

from aws_lambda_powertools import Logger

__all__ = ["logger"]

logger = Logger(service="solana-exec")
