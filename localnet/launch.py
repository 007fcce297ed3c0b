"""Token launches on the running cluster: a new mint now, its pool against SOL later.

For sniper orders (issue 17): `POST /_localnet/launch` {"symbol", "decimals", "afterMs",
"dex"} answers with the mint and the pool's address at once; the pool appears on chain
`afterMs` later, created by the program's own instructions as at genesis.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any

from solders.keypair import Keypair
from solders.pubkey import Pubkey

from . import meteora, raydium
from .genesis import PoolMaker, TokenSpec, create_pool
from .spl import NATIVE_MINT

__all__ = ["LaunchError", "Launcher", "PendingLaunch"]

FIRST_LAUNCH_PRESET = 1_000  # DLMM preset indexes of launched pairs (genesis uses 0..n)


class LaunchError(ValueError):
    """A launch request that makes no sense."""


@dataclass
class PendingLaunch:
    token: TokenSpec
    spec: dict[str, Any]
    preset_index: int
    answer: dict[str, Any]


class Launcher:
    def __init__(self, maker: PoolMaker, registry: dict[str, Any], registry_path: Path | None = None) -> None:
        self.maker = maker
        self.registry = registry
        self.registry_path = registry_path
        self.count = 0

    def prepare(self, body: Any) -> tuple[PendingLaunch, float]:
        """Write the new mint now; what to create later and after how many seconds."""
        if not isinstance(body, dict):
            raise LaunchError("body must be a JSON object")
        symbol, decimals = body.get("symbol"), body.get("decimals", 6)
        after_ms, dex = body.get("afterMs", 0), body.get("dex", "raydium")
        if not isinstance(symbol, str) or not 1 <= len(symbol) <= 10:
            raise LaunchError("symbol: 1 to 10 characters")
        if not isinstance(decimals, int) or isinstance(decimals, bool) or not 0 <= decimals <= 9:
            raise LaunchError("decimals: an integer from 0 to 9")
        if not isinstance(after_ms, int) or isinstance(after_ms, bool) or not 0 <= after_ms <= 3_600_000:
            raise LaunchError("afterMs: an integer from 0 to 3600000")
        if dex not in ("raydium", "meteora"):
            raise LaunchError("dex: raydium or meteora")
        open_in_s = body.get("openInS", 0)  # CP-Swap's open_time, seconds after creation (0: the program's +1)
        if not isinstance(open_in_s, int) or isinstance(open_in_s, bool) or not 0 <= open_in_s <= 86_400:
            raise LaunchError("openInS: an integer from 0 to 86400")
        if open_in_s and dex != "raydium":
            raise LaunchError("openInS: only a raydium pool has an open time")
        try:
            price = Decimal(str(body.get("price", "0.0001")))  # SOL per whole token
            sol_depth = Decimal(str(body.get("solDepth", "500")))
        except InvalidOperation as exc:
            raise LaunchError("price and solDepth: decimal numbers") from exc
        if not price.is_finite() or price <= 0 or not sol_depth.is_finite() or sol_depth <= 0:
            raise LaunchError("price and solDepth must be positive")

        mint = Keypair().pubkey()
        key = str(mint)  # symbols need not be unique on a chain; mints are
        token = TokenSpec(symbol, mint, decimals)
        self.maker.genesis.tokens[key] = token
        self.maker.write_mints()
        self.count += 1
        preset_index = FIRST_LAUNCH_PRESET + self.count
        spec: dict[str, Any] = {"dex": dex, "base": key, "quote": self._sol_key(), "price": str(price)}
        if dex == "raydium":
            spec["baseDepth"] = str(sol_depth / price)
            spec["openInS"] = open_in_s
            pool = self._cpmm_address(mint)
        else:
            spec.update({"binStep": 80, "baseFactor": 10_000, "halfWidth": 30, "quoteValue": str(2 * sol_depth)})
            program = self.maker.programs["meteora"]
            pool = meteora.pair_address(program, meteora.preset_address(program, preset_index), mint, NATIVE_MINT)
        answer = {"symbol": symbol, "decimals": decimals, "mint": key, "pool": str(pool), "dex": dex}
        return PendingLaunch(token, spec, preset_index, answer), after_ms / 1000

    def create(self, launch: PendingLaunch) -> dict[str, Any]:
        """Make the pool (the programs' instructions), and list it in the registry."""
        entry = create_pool(self.maker, launch.spec, launch.preset_index)
        assert entry["address"] == launch.answer["pool"], (entry, launch.answer)
        self.registry["tokens"].append(
            {"symbol": launch.token.symbol, "mint": str(launch.token.mint), "decimals": launch.token.decimals}
        )
        self.registry["pools"].append(entry)
        if self.registry_path is not None:
            tmp = self.registry_path.with_suffix(self.registry_path.suffix + ".tmp")
            tmp.write_text(json.dumps(self.registry, indent=2) + "\n")
            tmp.replace(self.registry_path)
        return entry

    def _sol_key(self) -> str:
        return next(k for k, t in self.maker.genesis.tokens.items() if t.mint == NATIVE_MINT)

    def _cpmm_address(self, mint: Pubkey) -> Pubkey:
        amm_config = Pubkey.from_string(self.maker.genesis.raw["raydium"]["ammConfig"])
        fee_receiver = Pubkey.from_string(self.maker.genesis.raw["raydium"]["createPoolFeeReceiver"])
        info, _ = raydium.initialize_pool(
            self.maker.programs["raydium"],
            amm_config,
            fee_receiver,
            self.maker.provider.pubkey(),
            {mint: 1, NATIVE_MINT: 1},
        )
        return info.address
