"""``python -m localnet``: a local Solana cluster (LiteSVM + JSON-RPC) in the foreground."""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal
import sys
from collections.abc import Sequence
from pathlib import Path

from aiohttp import web
from solders.litesvm import LiteSVM

from .faults import Faults, FaultsError, parse_delay
from .genesis import GenesisError, build, load_genesis
from .launch import Launcher
from .ledger import Ledger
from .programs import PROJECT_DIR, accounts_dir, missing_programs, programs_dir
from .server import ClusterServer
from .wallet import load_or_create_keypair

EXIT_NO_PROGRAMS = 3


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m localnet",
        description="A local Solana cluster: the real venue programs on LiteSVM, served as JSON-RPC.",
    )
    parser.add_argument("--genesis", default=str(PROJECT_DIR / "infra" / "localnet.json"), help="genesis file")
    parser.add_argument(
        "--port", type=int, default=int(os.environ.get("SOLANA_RPC_PORT", "8899")), help="RPC port (0: any free)"
    )
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--wallet", required=True, help="keypair file to fund (created if missing)")
    parser.add_argument("--registry-out", required=True, help="where to write the pool registry (JSON)")
    parser.add_argument("--slot-ms", type=int, default=400)
    parser.add_argument("--blockhash-valid-slots", type=int, default=150)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--drop-ppm", type=int, default=0, help="sends lost, per million")
    parser.add_argument("--land-delay-slots", default="1-1", help="MIN-MAX slots from send to landing")
    parser.add_argument("--programs-dir", help="default: SOLANA_PROGRAMS_DIR or ../shared/solana/programs")
    parser.add_argument("--accounts-dir", help="default: SOLANA_ACCOUNTS_DIR or ../shared/solana/accounts")
    return parser.parse_args(argv)


def _say(event: str, **fields: object) -> None:
    print(json.dumps({"event": event, **fields}), flush=True)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    try:
        delay = parse_delay(args.land_delay_slots)
        faults = Faults(land_delay_slots=delay, drop_ppm=args.drop_ppm)
        faults.update({"dropPpm": args.drop_ppm})
    except FaultsError as exc:
        print(f"localnet: {exc}", file=sys.stderr)
        return 2
    genesis = load_genesis(args.genesis)
    programs = programs_dir(args.programs_dir)
    missing = missing_programs(programs, [p["file"] for p in genesis.raw["programs"]])
    if missing:
        where = programs or "SOLANA_PROGRAMS_DIR / ../shared/solana/programs"
        print(
            f"localnet: no program binaries ({', '.join(missing)} not in {where}): no local Solana cluster. "
            "Set SOLANA_PROGRAMS_DIR, or fetch them from mainnet with `make solana-programs`.",
            file=sys.stderr,
        )
        return EXIT_NO_PROGRAMS
    accounts = accounts_dir(args.accounts_dir)
    if programs is None or accounts is None:
        print("localnet: no account fixtures: set SOLANA_ACCOUNTS_DIR", file=sys.stderr)
        return EXIT_NO_PROGRAMS

    wallet = load_or_create_keypair(args.wallet)
    svm = LiteSVM()
    try:
        result = build(svm, genesis, wallet.pubkey(), programs, accounts, seed=args.seed)
    except GenesisError as exc:
        print(f"localnet: genesis failed: {exc}", file=sys.stderr)
        return 1
    ledger = Ledger(svm, valid_slots=args.blockhash_valid_slots, seed=args.seed, faults=faults)
    registry_path = Path(args.registry_out).resolve()
    registry_path.parent.mkdir(parents=True, exist_ok=True)
    tmp = registry_path.with_suffix(registry_path.suffix + ".tmp")
    tmp.write_text(json.dumps(result.registry, indent=2) + "\n")
    tmp.replace(registry_path)
    launcher = Launcher(result.maker, result.registry, registry_path)
    server = ClusterServer(ledger, slot_ms=args.slot_ms, extra={"registry": result.registry}, launcher=launcher)
    return asyncio.run(
        _serve(server, args, result.seconds, len(result.registry["pools"]), str(wallet.pubkey()), str(registry_path))
    )


async def _serve(
    server: ClusterServer, args: argparse.Namespace, genesis_s: float, pools: int, wallet: str, registry: str
) -> int:
    runner = web.AppRunner(server.app(), access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, args.host, args.port)
    try:
        await site.start()
    except OSError as exc:
        print(
            f"localnet: cannot listen on {args.host}:{args.port} ({exc.strerror}); set SOLANA_RPC_PORT", file=sys.stderr
        )
        await runner.cleanup()
        return 1
    port = runner.addresses[0][1]
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    url = f"http://{args.host}:{port}"
    env = {
        "SOLANA_RPC_URL": url,
        "SOLANA_POOLS_FILE": registry,
        "WALLET_KEYPAIR_PATH": str(Path(args.wallet).resolve()),
    }
    _say(
        "ready",
        name="Solana RPC",
        url=url,
        port=port,
        wallet=wallet,
        registry=registry,
        env=env,
        pools=pools,
        genesisMs=round(genesis_s * 1000, 1),
        slotMs=args.slot_ms,
    )
    await stop.wait()
    await runner.cleanup()
    _say("stopped")
    return 0


if __name__ == "__main__":
    sys.exit(main())
