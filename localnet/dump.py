"""``python -m localnet.dump``: fetch the venue programs' binaries from a cluster's RPC.

What `solana program dump` does: read the program account (upgradeable loader: its data
names the ProgramData account), read the ProgramData account and drop its 45-byte header
(4 tag + 8 slot + 1 + 32 upgrade authority). The program list comes from the genesis file.
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import json
import sys
from collections.abc import Sequence
from pathlib import Path

from solders.pubkey import Pubkey

from .process import rpc_call
from .programs import PROJECT_DIR

__all__ = ["PROGRAM_DATA_HEADER", "dump_program"]

UPGRADEABLE_LOADER = "BPFLoaderUpgradeab1e11111111111111111111111"
PROGRAM_DATA_HEADER = 45
MAINNET = "https://api.mainnet-beta.solana.com"


class DumpError(RuntimeError):
    """The cluster has no such upgradeable program."""


def _account_data(rpc_url: str, address: str) -> tuple[str, bytes]:
    response = rpc_call(rpc_url, "getAccountInfo", [address, {"encoding": "base64"}], timeout=120)
    if "error" in response:
        raise DumpError(f"getAccountInfo {address}: {response['error']}")
    value = response["result"]["value"]
    if value is None:
        raise DumpError(f"no account {address} on {rpc_url}")
    return value["owner"], base64.b64decode(value["data"][0])


def dump_program(rpc_url: str, program_id: str) -> bytes:
    """The program's ELF bytes (as deployed: trailing zero padding of the ProgramData account kept)."""
    owner, data = _account_data(rpc_url, program_id)
    if owner != UPGRADEABLE_LOADER or len(data) < 36 or data[:4] != (2).to_bytes(4, "little"):
        raise DumpError(f"{program_id} is not an upgradeable program (owner {owner})")
    program_data = str(Pubkey.from_bytes(data[4:36]))
    owner, data = _account_data(rpc_url, program_data)
    if owner != UPGRADEABLE_LOADER or data[:4] != (3).to_bytes(4, "little"):
        raise DumpError(f"{program_data} is not a ProgramData account")
    return data[PROGRAM_DATA_HEADER:]


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m localnet.dump", description=__doc__.splitlines()[0])
    parser.add_argument("--rpc-url", default=MAINNET)
    parser.add_argument("--out", required=True, help="folder to write <file>.so into (SOLANA_PROGRAMS_DIR)")
    parser.add_argument("--genesis", default=str(PROJECT_DIR / "infra" / "localnet.json"))
    args = parser.parse_args(argv)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    for spec in json.loads(Path(args.genesis).read_text())["programs"]:
        try:
            elf = dump_program(args.rpc_url, spec["id"])
        except (DumpError, OSError) as exc:
            print(f"localnet.dump: {spec['name']}: {exc}", file=sys.stderr)
            return 1
        (out / spec["file"]).write_bytes(elf)
        print(f"{out / spec['file']}  {len(elf)} bytes  sha256 {hashlib.sha256(elf).hexdigest()}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
