from __future__ import annotations

from decimal import Decimal

import pytest

from chalicelib.errors import InvalidOrder
from chalicelib.market import DEFAULT_TOKENS
from chalicelib.orders import Status, can_transition
from chalicelib.validation import parse_json_body, parse_order


def parse(**body):
    return parse_order(parse_json_body(__import__("json").dumps(body), 16384), DEFAULT_TOKENS)


def test_a_valid_order_is_resolved_to_base_units():
    order = parse(tokenIn="sol", tokenOut="USDC", amount=1.5, slippage=0.01)
    assert (order.token_in, order.token_out, order.amount_in) == ("SOL", "USDC", 1_500_000_000)
    assert order.slippage == Decimal("0.01")
    assert order.to_public()["amount"] == "1.5"


def test_mint_addresses_and_slippage_bps_are_accepted():
    order = parse(tokenIn="So11111111111111111111111111111111111111112", tokenOut="USDC", amount="100", slippageBps=50)
    assert order.token_in == "SOL" and order.slippage == Decimal("0.005")
    assert order.to_public()["amount"] == "100"


def test_floats_never_enter_the_engine():
    # 0.1 + 0.2 style drift would show up as a non-integral base amount
    order = parse(tokenIn="USDC", tokenOut="SOL", amount=0.3, slippage=0.01)
    assert order.amount_in == 300_000 and isinstance(order.amount, Decimal)


@pytest.mark.parametrize(
    ("body", "field", "code"),
    [
        ({"tokenIn": "SOL", "tokenOut": "USDC", "amount": "1.0000000001", "slippage": 0.01}, "amount", "invalid_order"),
        ({"tokenIn": "SOL", "tokenOut": "USDC", "amount": 0, "slippage": 0.01}, "amount", "invalid_order"),
        ({"tokenIn": "SOL", "tokenOut": "USDC", "amount": "NaN", "slippage": 0.01}, "amount", "invalid_order"),
        ({"tokenIn": "SOL", "tokenOut": "USDC", "amount": [], "slippage": 0.01}, "amount", "invalid_order"),
        ({"tokenIn": "SOL", "tokenOut": "USDC", "amount": 1, "slippage": 0}, "slippage", "invalid_order"),
        ({"tokenIn": "SOL", "tokenOut": "USDC", "amount": 1, "slippageBps": 10001}, "slippageBps", "invalid_order"),
        ({"tokenIn": "SOL", "tokenOut": "USDC", "amount": 1, "slippageBps": 1.5}, "slippageBps", "invalid_order"),
        (
            {"tokenIn": "SOL", "tokenOut": "USDC", "amount": 1, "slippage": 0.01, "slippageBps": 100},
            "slippage",
            "invalid_order",
        ),
        ({"tokenIn": "SOL", "tokenOut": "USDC", "amount": 1}, "slippage", "invalid_order"),
        ({"tokenIn": "XYZ", "tokenOut": "USDC", "amount": 1, "slippage": 0.01}, "tokenIn", "unsupported_token"),
        ({"tokenIn": 5, "tokenOut": "USDC", "amount": 1, "slippage": 0.01}, "tokenIn", "invalid_order"),
        ({"tokenIn": "usdc", "tokenOut": "USDC", "amount": 1, "slippage": 0.01}, "tokenOut", "invalid_order"),
        (
            {"tokenIn": "SOL", "tokenOut": "USDC", "amount": 1, "slippage": 0.01, "type": "stop"},
            "type",
            "unsupported_order_type",
        ),
        ({"tokenOut": "USDC", "amount": 1, "slippage": 0.01}, "tokenIn", "invalid_order"),
        ({"tokenIn": "SOL", "tokenOut": "USDC", "amount": "1e400", "slippage": 0.01}, "amount", "invalid_order"),
    ],
)
def test_each_bad_field_is_named(body, field, code):
    with pytest.raises(InvalidOrder) as caught:
        parse(**body)
    assert caught.value.field == field and caught.value.code == code


@pytest.mark.parametrize("raw", [b"", b"{", b"[1,", b"\xff\xfe", b"nul"])
def test_bad_json_is_invalid_json(raw):
    with pytest.raises(InvalidOrder) as caught:
        parse_json_body(raw, 1024)
    assert caught.value.code == "invalid_json"


def test_huge_bodies_are_refused_before_parsing():
    with pytest.raises(InvalidOrder) as caught:
        parse_json_body(b"{" + b" " * 5000 + b"}", 1024)
    assert caught.value.code == "payload_too_large"


def test_statuses_never_go_backwards_except_a_retry():
    assert can_transition(Status.PENDING, Status.ROUTING)
    assert can_transition(Status.SUBMITTED, Status.ROUTING)  # a retry
    assert not can_transition(Status.BUILDING, Status.PENDING)
    assert not can_transition(Status.CONFIRMED, Status.FAILED)
    assert not can_transition(Status.FAILED, Status.ROUTING)
    assert can_transition(Status.FAILED, Status.ROUTING, redrive=True)
