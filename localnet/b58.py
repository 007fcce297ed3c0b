"""Base58 (Bitcoin alphabet), as Solana's JSON-RPC writes instruction data."""

from __future__ import annotations

__all__ = ["b58decode", "b58encode"]

_ALPHABET = "123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz"


def b58encode(data: bytes) -> str:
    zeros = len(data) - len(data.lstrip(b"\0"))
    number = int.from_bytes(data, "big")
    digits: list[str] = []
    while number:
        number, rem = divmod(number, 58)
        digits.append(_ALPHABET[rem])
    return "1" * zeros + "".join(reversed(digits))


def b58decode(text: str) -> bytes:
    number = 0
    for ch in text:
        digit = _ALPHABET.find(ch)
        if digit < 0:
            raise ValueError(f"not base58: {ch!r}")
        number = number * 58 + digit
    zeros = len(text) - len(text.lstrip("1"))
    return bytes(zeros) + number.to_bytes((number.bit_length() + 7) // 8, "big")
