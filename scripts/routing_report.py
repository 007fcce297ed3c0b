"""How the router splits SOL -> USDC orders from tiny to pool-moving.

Prints a table (size, each venue's output, the route taken, the split, price impact) and
draws a chart of each venue's and the router's effective price against order size.

    python scripts/routing_report.py --out bench/out/routing.png [--seed 7] [--at-ms N]

Needs matplotlib (a development dependency); the market itself does not.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from decimal import Decimal
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from chalicelib.market import DEFAULT_TOKENS, Market, MarketConfig, MarketError, RoutePlan, Token

SIZES_SOL = ["0.01", "0.1", "1", "10", "50", "100", "250", "500", "1000", "2500", "5000", "10000", "25000", "50000"]
DEFAULT_AT_MS = 1_764_000_000_000


def _out(plan: RoutePlan, dex: str) -> Decimal | None:
    quote = next(q for q in plan.quotes if q.dex == dex)
    return None if quote.error else DEFAULT_TOKENS.to_decimal(plan.token_out, quote.amount_out)


def _fmt(value: Decimal | None, places: int = 2) -> str:
    return "—" if value is None else f"{value:,.{places}f}"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default="bench/out/routing.png", help="where to write the PNG chart")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--at-ms", type=int, default=DEFAULT_AT_MS, help="market instant (ms since epoch)")
    parser.add_argument("--instants", type=int, default=30, help="instants, a minute apart, for the win shares")
    args = parser.parse_args(argv)

    sol, usdc = DEFAULT_TOKENS.resolve("SOL"), DEFAULT_TOKENS.resolve("USDC")
    assert sol is not None and usdc is not None
    market = Market(MarketConfig(seed=args.seed, quote_delay_ms=(0, 0)), clock=_fixed_clock(args.at_ms))

    header = f"{'SOL in':>10} {'raydium USDC':>16} {'meteora USDC':>16} {'best':>8} {'routed USDC':>16}"
    header += f" {'raydium %':>9} {'impact %':>9}"
    print(header)
    print("-" * len(header))
    rows = []
    for size in SIZES_SOL:
        amount = DEFAULT_TOKENS.to_base_units(sol, Decimal(size))
        try:
            plan = market.route(sol, usdc, amount)
        except MarketError as err:
            print(f"{size:>10} {type(err).__name__}: {err}")
            continue
        ray, met = _out(plan, "raydium"), _out(plan, "meteora")
        routed = DEFAULT_TOKENS.to_decimal(usdc, plan.amount_out)
        ray_pct = sum((leg.percent for leg in plan.legs if leg.dex == "raydium"), Decimal(0))
        impact = plan.price_impact * 100
        print(
            f"{size:>10} {_fmt(ray):>16} {_fmt(met):>16} {plan.dex:>8} {_fmt(routed):>16}"
            f" {ray_pct:>9.2f} {impact:>9.4f}"
        )
        rows.append((Decimal(size), ray, met, routed, ray_pct, impact))

    _win_shares(sol, usdc, args.seed, args.at_ms, args.instants)
    _chart(rows, Path(args.out), args.seed)
    print(f"\nchart: {args.out}")
    return 0


def _fixed_clock(t_ms: int) -> Callable[[], int]:
    return lambda: t_ms


def _win_shares(sol: Token, usdc: Token, seed: int, at_ms: int, instants: int) -> None:
    """Which route wins each size, counted over instants a minute apart."""
    print(f"\nroute chosen over {instants} instants a minute apart (raydium / meteora / split):")
    for size in ["1", "100", "1000", "5000"]:
        counts = {"raydium": 0, "meteora": 0, "split": 0}
        amount = DEFAULT_TOKENS.to_base_units(sol, Decimal(size))
        for i in range(instants):
            market = Market(MarketConfig(seed=seed, quote_delay_ms=(0, 0)), clock=_fixed_clock(at_ms + i * 60_000))
            counts[market.route(sol, usdc, amount).dex] += 1
        print(f"{size:>10} SOL: {counts['raydium']:>3} / {counts['meteora']:>3} / {counts['split']:>3}")


def _chart(
    rows: list[tuple[Decimal, Decimal | None, Decimal | None, Decimal, Decimal, Decimal]], out: Path, seed: int
) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    out.parent.mkdir(parents=True, exist_ok=True)
    fig, (top, bottom) = plt.subplots(2, 1, figsize=(9, 8), sharex=True, gridspec_kw={"height_ratios": [3, 2]})
    sizes = [float(r[0]) for r in rows]  # floats only for plotting

    def price(i: int) -> list[float | None]:
        return [float(r[i] / r[0]) if r[i] is not None else None for r in rows]  # type: ignore[operator]

    top.plot(sizes, price(1), "o-", label="Raydium CPMM alone")
    top.plot(sizes, price(2), "s-", label="Meteora DLMM alone")
    top.plot(sizes, price(3), "k^--", label="router (best or split)")
    top.set_xscale("log")
    top.set_ylabel("USDC received per SOL")
    top.set_title(f"SOL -> USDC routing by order size (seed {seed})")
    top.grid(True, which="both", alpha=0.3)
    top.legend()

    bottom.bar(
        sizes, [float(r[4]) for r in rows], width=[s * 0.35 for s in sizes], color="tab:blue", label="% to Raydium"
    )
    bottom.set_ylabel("% of order sent to Raydium")
    bottom.set_ylim(0, 100)
    twin = bottom.twinx()
    twin.plot(sizes, [float(r[5]) for r in rows], "r.-", label="price impact %")
    twin.set_ylabel("price impact %", color="tab:red")
    bottom.set_xlabel("order size (SOL, log scale)")
    bottom.grid(True, which="both", alpha=0.3)
    fig.tight_layout()
    fig.savefig(out, dpi=110)
    plt.close(fig)


if __name__ == "__main__":
    raise SystemExit(main())
