"""The local cluster driven over real HTTP: swaps built here land on the real programs.

One cluster for the module (fast slots so expiry and finality take seconds, not minutes).
"""

from __future__ import annotations

import base64
import json
import struct
import time
import urllib.request
from collections.abc import Iterator
from typing import Any

import pytest
from solders.keypair import Keypair
from solders.pubkey import Pubkey
from solders.token.associated import get_associated_token_address

from localnet import rpc_call
from tests.localnet.swaps import cpmm_swap, create_ata_idempotent, dlmm_swap, find_pool, mint_of, signed
from tests.support import local_cluster, solana_programs_available, wait_until

pytestmark = pytest.mark.skipif(not solana_programs_available(), reason="no Solana program binaries")

SLOT_MS = 100
VALID_SLOTS = 30
CPMM = "CPMMoo8L3F4NbTegBCKVNunggL7H1ZpdTHKxQB5qKP1C"
DLMM = "LBUZKhRxPF3XUpBCjp4YzTKgLccjZhTSDM9YuVaPwxo"


@pytest.fixture(scope="module")
def cluster(tmp_path_factory) -> Iterator[Any]:
    with local_cluster(tmp_path_factory.mktemp("localnet"), slot_ms=SLOT_MS, blockhash_valid_slots=VALID_SLOTS) as c:
        yield c


@pytest.fixture(autouse=True)
def no_faults(cluster):
    yield
    _post(cluster, "/_localnet/reset-faults", {})


@pytest.fixture(scope="module")
def wallet(cluster) -> Keypair:
    return Keypair.from_bytes(bytes(json.loads(cluster.wallet_path.read_text())))


@pytest.fixture(scope="module")
def registry(cluster) -> dict[str, Any]:
    return cluster.registry()


def call(cluster, method: str, *params: Any) -> Any:
    response = rpc_call(cluster.rpc_url, method, list(params))
    assert "error" not in response, response
    return response["result"]


def call_error(cluster, method: str, *params: Any) -> dict[str, Any]:
    response = rpc_call(cluster.rpc_url, method, list(params))
    assert "error" in response, response
    return response["error"]


def _post(cluster, path: str, body: Any) -> tuple[int, Any]:
    req = urllib.request.Request(
        cluster.rpc_url + path, json.dumps(body).encode(), {"Content-Type": "application/json"}, method="POST"
    )
    try:
        with urllib.request.urlopen(req, timeout=10) as resp:
            return resp.status, json.loads(resp.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read())


def blockhash(cluster) -> dict[str, Any]:
    return call(cluster, "getLatestBlockhash", {"commitment": "confirmed"})["value"]


def b64(tx) -> str:
    return base64.b64encode(bytes(tx)).decode()


def send(cluster, tx, **config: Any) -> str:
    return call(cluster, "sendTransaction", b64(tx), {"encoding": "base64", **config})


def status(cluster, signature: str) -> dict[str, Any] | None:
    return call(cluster, "getSignatureStatuses", [signature], {"searchTransactionHistory": True})["value"][0]


def wait_status(cluster, signature: str, level: str = "confirmed", timeout: float = 10) -> dict[str, Any]:
    order = ["processed", "confirmed", "finalized"]

    def reached() -> dict[str, Any] | None:
        s = status(cluster, signature)
        return s if s and order.index(s["confirmationStatus"]) >= order.index(level) else None

    return wait_until(reached, timeout, f"{signature} {level}")


def get_tx(cluster, signature: str, **config: Any) -> Any:
    return call(
        cluster,
        "getTransaction",
        signature,
        {"commitment": "confirmed", "maxSupportedTransactionVersion": 0, "encoding": "json", **config},
    )


def token_delta(meta: dict[str, Any], owner: str, mint: str) -> int:
    def amount(rows: list[dict[str, Any]]) -> int:
        return sum(int(r["uiTokenAmount"]["amount"]) for r in rows if r["owner"] == owner and r["mint"] == mint)

    return amount(meta["postTokenBalances"]) - amount(meta["preTokenBalances"])


def token_balance(cluster, owner: Pubkey, mint: str) -> int:
    address = get_associated_token_address(owner, Pubkey.from_string(mint))
    return int(call(cluster, "getTokenAccountBalance", str(address))["value"]["amount"])


# ---------------------------------------------------------------------- genesis
def test_genesis_registry_pools_on_both_programs(cluster, registry):
    assert registry["programs"] == {"raydium": CPMM, "meteora": DLMM}
    pairs = {(p["dex"], frozenset(p["mints"])) for p in registry["pools"]}
    assert len(registry["pools"]) == 16 and len(pairs) == 16
    for pool in registry["pools"]:
        account = call(cluster, "getAccountInfo", pool["address"], {"encoding": "base64"})["value"]
        assert account["owner"] == {"raydium": CPMM, "meteora": DLMM}[pool["dex"]]
    lb_pair = next(p for p in registry["pools"] if p["dex"] == "meteora")
    data = base64.b64decode(
        call(cluster, "getAccountInfo", lb_pair["address"], {"encoding": "base64"})["value"]["data"][0]
    )
    assert data[:8] == bytes([33, 11, 49, 98, 181, 101, 177, 13])  # LbPair discriminator


def test_mints_at_real_addresses_and_wallet_funded(cluster, registry, wallet):
    usdc = call(cluster, "getAccountInfo", "EPjFWdd5AufqSSqeM2qN1xzybapC8G4wEGGkZwyTDt1v", {"encoding": "base64"})
    assert usdc["value"]["owner"] == "TokenkegQfeZyiNwAJbNbGKPFXCWuBvf9Ss623VQ5DA"
    assert call(cluster, "getBalance", str(wallet.pubkey()))["value"] > 10**9
    accounts = call(
        cluster,
        "getTokenAccountsByOwner",
        str(wallet.pubkey()),
        {"programId": "TokenkegQfeZyiNwAJbNbGKPFXCWuBvf9Ss623VQ5DA"},
        {"encoding": "jsonParsed"},
    )["value"]
    mints = {a["account"]["data"]["parsed"]["info"]["mint"] for a in accounts}
    assert mints == {t["mint"] for t in registry["tokens"]}
    assert token_balance(cluster, wallet.pubkey(), mint_of(registry, "SOL")) > 0  # pre-wrapped SOL


def test_slots_advance_and_clock_follows_wall_time(cluster):
    began = time.monotonic()
    first = call(cluster, "getSlot", {"commitment": "processed"})
    time.sleep(SLOT_MS * 5 / 1000)
    later = call(cluster, "getSlot", {"commitment": "processed"})
    elapsed_slots = (time.monotonic() - began) / (SLOT_MS / 1000)
    assert 3 <= later - first <= elapsed_slots + 2  # a slot per SLOT_MS of wall time, however loaded
    assert call(cluster, "getBlockHeight", {"commitment": "processed"}) >= later
    clock = call(cluster, "getAccountInfo", "SysvarC1ock11111111111111111111111111111111", {"encoding": "base64"})
    unix_timestamp = struct.unpack_from("<q", base64.b64decode(clock["value"]["data"][0]), 32)[0]
    assert abs(unix_timestamp - time.time()) < 5


# ------------------------------------------------------------------------ swaps
def test_cpmm_swap_lands_with_program_logs_and_token_changes(cluster, registry, wallet):
    sol, usdc = mint_of(registry, "SOL"), mint_of(registry, "USDC")
    pool = find_pool(registry, "raydium", sol, usdc)
    usdc_before = token_balance(cluster, wallet.pubkey(), usdc)
    tx = signed(
        wallet, [cpmm_swap(registry, pool, wallet.pubkey(), sol, 2 * 10**9, 1)], blockhash(cluster)["blockhash"]
    )
    signature = send(cluster, tx)
    assert signature == str(tx.signatures[0])
    wait_status(cluster, signature)
    got = get_tx(cluster, signature)
    meta = got["meta"]
    assert meta["err"] is None and got["transaction"]["signatures"] == [signature]
    assert any(line.startswith(f"Program {CPMM} invoke") for line in meta["logMessages"])
    assert meta["fee"] >= 5000 and meta["computeUnitsConsumed"] > 0
    me = str(wallet.pubkey())
    received = token_delta(meta, me, usdc)
    assert token_delta(meta, me, sol) == -2 * 10**9
    assert 270 * 10**6 < received < 300 * 10**6  # ~142 USDC per SOL less the 0.25 % fee
    assert token_balance(cluster, wallet.pubkey(), usdc) - usdc_before == received
    assert got["version"] == 0 and got["slot"] > 0 and got["blockTime"] > 0


def test_dlmm_swap_lands_and_moves_the_pool(cluster, registry, wallet):
    sol, usdc = mint_of(registry, "SOL"), mint_of(registry, "USDC")
    pool = find_pool(registry, "meteora", sol, usdc)
    amount = 500 * 10**6  # 500 USDC in (token y): buys SOL
    tx = signed(wallet, [dlmm_swap(registry, pool, wallet.pubkey(), usdc, amount, 1)], blockhash(cluster)["blockhash"])
    signature = send(cluster, tx)
    wait_status(cluster, signature)
    meta = get_tx(cluster, signature)["meta"]
    assert meta["err"] is None
    assert any(line.startswith(f"Program {DLMM} invoke") for line in meta["logMessages"])
    me = str(wallet.pubkey())
    assert token_delta(meta, me, usdc) == -amount
    assert 3.3 * 10**9 < token_delta(meta, me, sol) < 3.6 * 10**9  # ~142 USDC per SOL
    pair = pool["address"]  # the pair owns its reserves
    assert token_delta(meta, pair, usdc) == amount
    assert token_delta(meta, pair, sol) == -token_delta(meta, me, sol)
    assert pool["reserves"][1] in get_tx(cluster, signature)["transaction"]["message"]["accountKeys"]


def test_a_floor_the_program_refuses_fails_preflight_with_its_error(cluster, registry, wallet):
    sol, usdc = mint_of(registry, "SOL"), mint_of(registry, "USDC")
    pool = find_pool(registry, "raydium", sol, usdc)
    too_high = 10**12
    tx = signed(
        wallet, [cpmm_swap(registry, pool, wallet.pubkey(), sol, 10**9, too_high)], blockhash(cluster)["blockhash"]
    )
    error = call_error(cluster, "sendTransaction", b64(tx), {"encoding": "base64"})
    assert error["code"] == -32002
    assert error["data"]["err"] == {"InstructionError": [1, {"Custom": 6005}]}
    assert any("ExceededSlippage" in line or "6005" in line for line in error["data"]["logs"])
    sim = call(cluster, "simulateTransaction", b64(tx), {"encoding": "base64", "replaceRecentBlockhash": True})
    assert sim["value"]["err"] == {"InstructionError": [1, {"Custom": 6005}]}
    assert sim["value"]["replacementBlockhash"]["lastValidBlockHeight"] > 0
    # sent without preflight it lands, failed, and pays its fee (as on a real cluster)
    signature = send(cluster, tx, skipPreflight=True)
    landed = wait_status(cluster, signature)
    assert landed["err"] == {"InstructionError": [1, {"Custom": 6005}]}
    assert landed["status"] == {"Err": landed["err"]}
    meta = get_tx(cluster, signature)["meta"]
    assert meta["err"] == landed["err"] and meta["fee"] >= 5000
    assert token_delta(meta, str(wallet.pubkey()), sol) == 0


def test_dlmm_floor_error_6003(cluster, registry, wallet):
    sol, usdc = mint_of(registry, "SOL"), mint_of(registry, "USDC")
    pool = find_pool(registry, "meteora", sol, usdc)
    tx = signed(
        wallet, [dlmm_swap(registry, pool, wallet.pubkey(), sol, 10**9, 10**12)], blockhash(cluster)["blockhash"]
    )
    error = call_error(cluster, "sendTransaction", b64(tx), {"encoding": "base64"})
    assert error["data"]["err"] == {"InstructionError": [1, {"Custom": 6003}]}


# -------------------------------------------------------------- landing rules
def test_same_transaction_twice_lands_once(cluster, registry, wallet):
    sol, usdc = mint_of(registry, "SOL"), mint_of(registry, "USDC")
    pool = find_pool(registry, "raydium", sol, usdc)
    before = token_balance(cluster, wallet.pubkey(), sol)
    tx = signed(wallet, [cpmm_swap(registry, pool, wallet.pubkey(), sol, 10**8, 1)], blockhash(cluster)["blockhash"])
    _post(cluster, "/_localnet/faults", {"landDelaySlots": [5, 5]})  # in flight for 2 s, whatever the load
    try:
        first = send(cluster, tx)
        assert send(cluster, tx) == first  # a rebroadcast while in flight
        wait_status(cluster, first)
    finally:
        _post(cluster, "/_localnet/faults", {"landDelaySlots": [1, 1]})
    error = call_error(cluster, "sendTransaction", b64(tx), {"encoding": "base64"})
    assert error["code"] == -32002 and error["data"]["err"] == "AlreadyProcessed"
    assert send(cluster, tx, skipPreflight=True) == first
    time.sleep(SLOT_MS * 4 / 1000)
    assert before - token_balance(cluster, wallet.pubkey(), sol) == 10**8


def test_expired_blockhash_never_executes(cluster, registry, wallet):
    sol, usdc = mint_of(registry, "SOL"), mint_of(registry, "USDC")
    pool = find_pool(registry, "raydium", sol, usdc)
    latest = blockhash(cluster)
    tx = signed(wallet, [cpmm_swap(registry, pool, wallet.pubkey(), sol, 10**8, 1)], latest["blockhash"])
    assert call(cluster, "isBlockhashValid", latest["blockhash"], {"commitment": "processed"})["value"] is True
    wait_until(
        lambda: call(cluster, "getBlockHeight", {"commitment": "processed"}) > latest["lastValidBlockHeight"],
        VALID_SLOTS * SLOT_MS / 1000 + 10,
        "the blockhash to expire",
    )
    assert call(cluster, "isBlockhashValid", latest["blockhash"], {"commitment": "processed"})["value"] is False
    error = call_error(cluster, "sendTransaction", b64(tx), {"encoding": "base64"})
    assert error["code"] == -32002 and error["data"]["err"] == "BlockhashNotFound"
    assert "Blockhash not found" in error["message"]
    signature = send(cluster, tx, skipPreflight=True)
    time.sleep(SLOT_MS * 5 / 1000)
    assert status(cluster, signature) is None


def test_dropped_send_never_lands_and_a_rebroadcast_does(cluster, registry, wallet):
    sol, usdc = mint_of(registry, "SOL"), mint_of(registry, "USDC")
    pool = find_pool(registry, "meteora", sol, usdc)
    code, faults = _post(cluster, "/_localnet/faults", {"dropNextSends": 1})
    assert code == 200 and faults["dropNextSends"] == 1
    tx = signed(wallet, [dlmm_swap(registry, pool, wallet.pubkey(), sol, 10**8, 1)], blockhash(cluster)["blockhash"])
    signature = send(cluster, tx)
    time.sleep(SLOT_MS * 5 / 1000)
    assert status(cluster, signature) is None
    assert send(cluster, tx) == signature
    wait_status(cluster, signature)
    with urllib.request.urlopen(cluster.rpc_url + "/_localnet/faults", timeout=5) as resp:
        after = json.loads(resp.read())
    assert after["dropNextSends"] == 0 and after["dropped"] >= 1


def test_drop_by_signature_and_landing_delay(cluster, registry, wallet):
    sol, usdc = mint_of(registry, "SOL"), mint_of(registry, "USDC")
    pool = find_pool(registry, "raydium", sol, usdc)
    tx = signed(wallet, [cpmm_swap(registry, pool, wallet.pubkey(), sol, 10**7, 1)], blockhash(cluster)["blockhash"])
    signature = str(tx.signatures[0])
    _post(cluster, "/_localnet/faults", {"dropSignatures": [signature], "landDelaySlots": [6, 6]})
    send(cluster, tx)
    time.sleep(SLOT_MS * 3 / 1000)
    assert status(cluster, signature) is None
    sent_at = call(cluster, "getSlot", {"commitment": "processed"})
    send(cluster, tx)
    landed = wait_status(cluster, signature, "processed")
    assert landed["slot"] >= sent_at + 5


def test_bad_fault_settings_are_400(cluster):
    for body in ({"dropNextSends": -1}, {"landDelaySlots": [3, 1]}, {"nonsense": 1}, {"dropPpm": 2_000_000}):
        code, answer = _post(cluster, "/_localnet/faults", body)
        assert code == 400 and answer["error"] == "bad_request", body


def test_signature_status_goes_processed_confirmed_finalized(cluster, registry, wallet):
    sol, usdc = mint_of(registry, "SOL"), mint_of(registry, "USDC")
    pool = find_pool(registry, "raydium", sol, usdc)
    tx = signed(wallet, [cpmm_swap(registry, pool, wallet.pubkey(), sol, 10**7, 1)], blockhash(cluster)["blockhash"])
    _post(cluster, "/_localnet/faults", {"landDelaySlots": [1, 1]})
    signature = send(cluster, tx)
    seen = []
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        s = status(cluster, signature)
        if s and (not seen or seen[-1]["confirmationStatus"] != s["confirmationStatus"]):
            seen.append(s)
        if s and s["confirmationStatus"] == "finalized":
            break
        if s and s["confirmationStatus"] == "confirmed" and s["confirmations"] < 20:  # far from finalized
            assert call(cluster, "getTransaction", signature, {"maxSupportedTransactionVersion": 0}) is None
        time.sleep(0.02)
    levels = [s["confirmationStatus"] for s in seen]
    assert levels[-2:] == ["confirmed", "finalized"], levels
    assert seen[-1]["confirmations"] is None and seen[-2]["confirmations"] >= 1
    assert call(cluster, "getTransaction", signature, {"maxSupportedTransactionVersion": 0})["meta"]["err"] is None
    error = call_error(cluster, "getTransaction", signature, {"commitment": "processed"})
    assert error["code"] == -32602


def test_get_transaction_base64_and_version_guard(cluster, registry, wallet):
    sol, usdc = mint_of(registry, "SOL"), mint_of(registry, "USDC")
    pool = find_pool(registry, "raydium", sol, usdc)
    tx = signed(wallet, [cpmm_swap(registry, pool, wallet.pubkey(), sol, 10**7, 1)], blockhash(cluster)["blockhash"])
    signature = send(cluster, tx)
    wait_status(cluster, signature)
    raw = get_tx(cluster, signature, encoding="base64")["transaction"]
    assert raw == [b64(tx), "base64"]
    error = call_error(cluster, "getTransaction", signature, {"commitment": "confirmed"})
    assert error["code"] == -32015


# ------------------------------------------------------------ make solana-programs
def test_make_solana_programs_dumps_programdata_from_a_cluster(cluster, tmp_path):
    """Against this local cluster (no internet here): LiteSVM serves each program as an
    upgradeable-loader program with a ProgramData account, the shape mainnet has."""
    import subprocess

    from localnet.programs import PROJECT_DIR, programs_dir

    out = tmp_path / "programs"
    done = subprocess.run(
        ["make", "-s", "solana-programs", f"SOLANA_MAINNET_RPC_URL={cluster.rpc_url}", f"SOLANA_PROGRAMS_DIR={out}"],
        cwd=PROJECT_DIR,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    shipped = programs_dir()
    assert shipped is not None
    for name in ("raydium_cp_swap.so", "meteora_dlmm.so"):
        dumped, original = (out / name).read_bytes(), (shipped / name).read_bytes()
        assert dumped[:4] == b"\x7fELF"
        assert dumped.rstrip(b"\0") == original.rstrip(b"\0")
    assert "sha256" in done.stdout


# ------------------------------------------------------------------ launches (issue 17)
def _registry_over_http(cluster) -> dict[str, Any]:
    with urllib.request.urlopen(cluster.rpc_url + "/_localnet/registry", timeout=5) as resp:
        return json.loads(resp.read())


def test_launch_a_mint_then_its_raydium_pool_later(cluster):
    code, launched = _post(cluster, "/_localnet/launch", {"symbol": "NEW", "decimals": 6, "afterMs": 600})
    assert code == 201 and launched["dex"] == "raydium" and launched["symbol"] == "NEW"
    mint = call(cluster, "getAccountInfo", launched["mint"], {"encoding": "base64"})["value"]
    assert mint["owner"] == "TokenkegQfeZyiNwAJbNbGKPFXCWuBvf9Ss623VQ5DA"
    assert call(cluster, "getAccountInfo", launched["pool"], {"encoding": "base64"})["value"] is None
    wait_until(
        lambda: call(cluster, "getAccountInfo", launched["pool"], {"encoding": "base64"})["value"], 10, "the pool"
    )
    assert call(cluster, "getAccountInfo", launched["pool"], {"encoding": "base64"})["value"]["owner"] == CPMM
    listed = [p for p in _registry_over_http(cluster)["pools"] if p["address"] == launched["pool"]]
    assert len(listed) == 1 and launched["mint"] in listed[0]["mints"]
    assert any(p["address"] == launched["pool"] for p in json.loads(cluster.registry_path.read_text())["pools"])


def test_launched_meteora_pool_trades(cluster, wallet):
    code, launched = _post(
        cluster, "/_localnet/launch", {"symbol": "SNIPE", "decimals": 6, "afterMs": 0, "dex": "meteora"}
    )
    assert code == 201
    pool = wait_until(
        lambda: next((p for p in _registry_over_http(cluster)["pools"] if p["address"] == launched["pool"]), None),
        10,
        "the launched pair",
    )
    registry = _registry_over_http(cluster)
    sol = mint_of(registry, "SOL")
    me = wallet.pubkey()
    instructions = [create_ata_idempotent(me, me, launched["mint"]), dlmm_swap(registry, pool, me, sol, 10**8, 1)]
    tx = signed(wallet, instructions, blockhash(cluster)["blockhash"])
    signature = send(cluster, tx)
    wait_status(cluster, signature)
    meta = get_tx(cluster, signature)["meta"]
    assert meta["err"] is None
    assert token_delta(meta, str(wallet.pubkey()), launched["mint"]) > 0  # ~0.1 SOL at 0.0001 SOL each: ~1000


def test_bad_launches_are_400(cluster):
    for body in (
        {"decimals": 6},
        {"symbol": "X", "decimals": 12},
        {"symbol": "X", "dex": "orca"},
        {"symbol": "X", "afterMs": -1},
    ):
        code, answer = _post(cluster, "/_localnet/launch", body)
        assert code == 400 and answer["error"] == "bad_request", body


def test_cluster_without_programs_says_so(tmp_path):
    from localnet import ClusterProcess, ClusterStartError

    with pytest.raises(ClusterStartError) as failed:
        ClusterProcess(work_dir=tmp_path, programs_dir=tmp_path / "none").start()
    assert failed.value.returncode == 3
    assert "no program binaries" in failed.value.output and "make solana-programs" in failed.value.output
