"""Faults a test can switch on at run time: dropped sends and landing delay (local only)."""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from typing import Any

__all__ = ["Faults", "FaultsError"]


class FaultsError(ValueError):
    """A fault setting that makes no sense."""


@dataclass
class Faults:
    drop_next_sends: int = 0
    drop_signatures: set[str] = field(default_factory=set)
    land_delay_slots: tuple[int, int] = (1, 1)
    drop_ppm: int = 0

    def should_drop(self, signature: str, rng: random.Random) -> bool:
        """Whether this send is lost on its way to the leader (a later rebroadcast may get through)."""
        if signature in self.drop_signatures:
            self.drop_signatures.discard(signature)
            return True
        if self.drop_next_sends > 0:
            self.drop_next_sends -= 1
            return True
        return self.drop_ppm > 0 and rng.randrange(1_000_000) < self.drop_ppm

    def update(self, body: dict[str, Any]) -> None:
        """Apply the fields of a `POST /_localnet/faults` body (others untouched)."""
        if not isinstance(body, dict):
            raise FaultsError("body must be a JSON object")
        unknown = set(body) - {"dropNextSends", "dropSignatures", "landDelaySlots", "dropPpm"}
        if unknown:
            raise FaultsError(f"unknown fault fields: {sorted(unknown)}")
        if "dropNextSends" in body:
            self.drop_next_sends = _non_negative(body["dropNextSends"], "dropNextSends")
        if "dropSignatures" in body:
            sigs = body["dropSignatures"]
            if not isinstance(sigs, list) or not all(isinstance(s, str) for s in sigs):
                raise FaultsError("dropSignatures must be a list of signatures")
            self.drop_signatures |= set(sigs)
        if "landDelaySlots" in body:
            self.land_delay_slots = parse_delay(body["landDelaySlots"])
        if "dropPpm" in body:
            self.drop_ppm = _non_negative(body["dropPpm"], "dropPpm")
            if self.drop_ppm > 1_000_000:
                raise FaultsError("dropPpm is at most 1000000")

    def to_json(self) -> dict[str, Any]:
        return {
            "dropNextSends": self.drop_next_sends,
            "dropSignatures": sorted(self.drop_signatures),
            "landDelaySlots": list(self.land_delay_slots),
            "dropPpm": self.drop_ppm,
        }


def _non_negative(value: Any, name: str) -> int:
    if not isinstance(value, int) or isinstance(value, bool) or value < 0:
        raise FaultsError(f"{name} must be a non-negative integer")
    return value


def parse_delay(value: Any) -> tuple[int, int]:
    """`[min, max]` or "MIN-MAX" (or one number) slots between a send and its landing; at least 1."""
    if isinstance(value, str):
        parts = value.split("-")
        try:
            value = [int(p) for p in parts]
        except ValueError as exc:
            raise FaultsError(f"landing delay {value!r}: expected MIN-MAX slots") from exc
    if isinstance(value, int) and not isinstance(value, bool):
        value = [value, value]
    if not isinstance(value, list) or len(value) not in (1, 2) or not all(isinstance(v, int) for v in value):
        raise FaultsError("landDelaySlots must be [min, max] slots")
    low, high = value[0], value[-1]
    if low < 1 or high < low:
        raise FaultsError("landDelaySlots: need 1 <= min <= max")
    return low, high
