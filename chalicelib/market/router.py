"""Splitting one order across two venues so the total output is highest.

The total g(a) = out_a(a) + out_b(n - a) is concave for constant-product and bin pools
(each venue's marginal price only worsens with size), up to integer rounding and the
DLMM fee stepping up per bin. So: a coarse grid finds the neighbourhood of the best
split, then a ternary search on integers narrows it; every point tried is a candidate,
so the answer is never worse than the grid's best or either venue alone (a = 0, a = n).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

__all__ = ["Split", "best_split"]


@dataclass(frozen=True)
class Split:
    amount_a: int  # input sent to venue a; the rest goes to venue b
    total_out: int
    evaluations: int


def best_split(
    out_a: Callable[[int], int],
    out_b: Callable[[int], int],
    amount_in: int,
    grid: int = 32,
) -> Split:
    memo: dict[int, int] = {}

    def total(a: int) -> int:
        if a not in memo:
            memo[a] = out_a(a) + out_b(amount_in - a)
        return memo[a]

    points = sorted({amount_in * i // grid for i in range(grid + 1)})
    best_i = max(range(len(points)), key=lambda i: (total(points[i]), -i))
    lo = points[max(best_i - 1, 0)]
    hi = points[min(best_i + 1, len(points) - 1)]
    while hi - lo > 2:
        m1 = lo + (hi - lo) // 3
        m2 = hi - (hi - lo) // 3
        if total(m1) < total(m2):
            lo = m1 + 1
        else:
            hi = m2
    for a in range(lo, hi + 1):
        total(a)
    best_a = max(memo, key=lambda a: (memo[a], -abs(2 * a - amount_in)))
    return Split(best_a, memo[best_a], len(memo))
