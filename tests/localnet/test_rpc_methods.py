"""The RPC methods' shapes and the ledger's rules, in process with a hand-driven clock.

GIVEN a genesis ledger whose slots advance only when the test says, WHEN a method is
called, THEN the answer has the shape Solana's RPC documentation gives.
"""

from __future__ import annotations

import base64
import json
from typing import Any

import pytest
from solders.keypair import Keypair
from solders.litesvm import LiteSVM
from solders.message import to_bytes_versioned
from solders.pubkey import Pubkey

from localnet.b58 import b58encode
from localnet.faults import Faults, FaultsError, parse_delay
from localnet.genesis import build, load_genesis
from localnet.ledger import FINALIZED_AFTER_SLOTS, STATUS_CACHE_SLOTS, Ledger, ui_token_amount
from localnet.programs import PROJECT_DIR, accounts_dir, programs_dir
from localnet.rpc import RpcMethods
from tests.localnet.swaps import cpmm_swap, find_pool, mint_of, signed
from tests.support import solana_programs_available

pytestmark = pytest.mark.skipif(not solana_programs_available(), reason="no Solana program binaries")

LB_PAIR_DISCRIMINATOR = bytes([33, 11, 49, 98, 181, 101, 177, 13])
TOKEN = "TokenkegQfeZyiNwAJbNbGKPFXCWuBvf9Ss623VQ5DA"


class Chain:
    def __init__(self) -> None:
        self.wallet = Keypair()
        svm = LiteSVM()
        programs, accounts = programs_dir(), accounts_dir()
        assert programs is not None and accounts is not None
        genesis = load_genesis(PROJECT_DIR / "infra" / "localnet.json")
        self.result = build(svm, genesis, self.wallet.pubkey(), programs, accounts)
        self.registry = self.result.registry
        self.ledger = Ledger(svm, valid_slots=150, faults=Faults())
        self.rpc = RpcMethods(self.ledger)

    def call(self, method: str, *params: Any) -> dict[str, Any]:
        return self.rpc.dispatch({"jsonrpc": "2.0", "id": 7, "method": method, "params": list(params)})

    def result_of(self, method: str, *params: Any) -> Any:
        response = self.call(method, *params)
        assert "error" not in response, response
        assert response["id"] == 7 and response["jsonrpc"] == "2.0"
        return response["result"]

    def swap(self, lamports: int = 10**7, floor: int = 1):
        sol, usdc = mint_of(self.registry, "SOL"), mint_of(self.registry, "USDC")
        pool = find_pool(self.registry, "raydium", sol, usdc)
        blockhash = self.result_of("getLatestBlockhash", {"commitment": "processed"})["value"]["blockhash"]
        return signed(
            self.wallet, [cpmm_swap(self.registry, pool, self.wallet.pubkey(), sol, lamports, floor)], blockhash
        )

    def send(self, tx, **config: Any) -> dict[str, Any]:
        return self.call("sendTransaction", base64.b64encode(bytes(tx)).decode(), {"encoding": "base64", **config})


@pytest.fixture
def chain() -> Chain:
    return Chain()  # ~0.2 s: a fresh genesis per test keeps the clock the test's own


def test_genesis_is_quick_and_complete(chain):
    assert chain.result.seconds < 5  # measured ~0.15 s; here only a gross bound
    assert {p["dex"] for p in chain.registry["pools"]} == {"raydium", "meteora"}
    assert len(chain.registry["pools"]) == 16


def test_envelope_errors():
    chain = Chain.__new__(Chain)
    chain.rpc = RpcMethods.__new__(RpcMethods)
    chain.rpc.methods = {"getHealth": lambda p: "ok"}
    assert chain.rpc.dispatch({"id": 1, "method": "nope"})["error"]["code"] == -32601
    assert chain.rpc.dispatch({"id": 1})["error"]["code"] == -32600
    assert chain.rpc.dispatch({"id": 1, "method": "getHealth", "params": {}})["error"]["code"] == -32602
    assert chain.rpc.dispatch({"id": 3, "method": "getHealth"}) == {"jsonrpc": "2.0", "result": "ok", "id": 3}


def test_bad_params_are_invalid_params(chain):
    for method, params in (
        ("getBalance", ["not-a-key"]),
        ("getSignatureStatuses", [["zz"]]),
        ("sendTransaction", ["!!", {"encoding": "base64"}]),
        ("sendTransaction", [base64.b64encode(b"\x01\x02").decode(), {"encoding": "base64"}]),
        ("getMinimumBalanceForRentExemption", [-1]),
        ("requestAirdrop", [str(Pubkey.default()), 0]),
    ):
        assert chain.call(method, *params)["error"]["code"] == -32602, method


def test_latest_blockhash_by_commitment(chain):
    chain.ledger.advance_to(100)
    processed = chain.result_of("getLatestBlockhash", {"commitment": "processed"})
    finalized = chain.result_of("getLatestBlockhash")
    assert processed["context"]["slot"] == 100
    assert processed["value"]["lastValidBlockHeight"] == 100 + 150
    assert finalized["value"]["lastValidBlockHeight"] == 100 - FINALIZED_AFTER_SLOTS + 150
    assert chain.result_of("getSlot", {"commitment": "processed"}) == 100
    assert chain.result_of("getBlockHeight", {"commitment": "confirmed"}) == 99


def test_account_info_shapes(chain):
    usdc = mint_of(chain.registry, "USDC")
    value = chain.result_of("getAccountInfo", usdc, {"encoding": "base64"})["value"]
    assert set(value) == {"data", "executable", "lamports", "owner", "rentEpoch", "space"}
    assert value["owner"] == TOKEN and value["space"] == 82 and value["data"][1] == "base64"
    sliced = chain.result_of("getAccountInfo", usdc, {"encoding": "base64", "dataSlice": {"offset": 44, "length": 1}})
    assert base64.b64decode(sliced["value"]["data"][0]) == bytes([6])  # decimals
    assert chain.result_of("getAccountInfo", str(Keypair().pubkey()))["value"] is None
    assert chain.result_of("getAccountInfo", usdc)["value"]["data"][1] == "base58"  # the RPC's default
    pair = next(p["address"] for p in chain.registry["pools"] if p["dex"] == "meteora")
    assert chain.call("getAccountInfo", pair)["error"]["code"] == -32602  # 904 bytes: too long for base58
    many = chain.result_of("getMultipleAccounts", [usdc, str(Keypair().pubkey())], {"encoding": "base64"})
    assert many["value"][0]["owner"] == TOKEN and many["value"][1] is None


def test_token_balance_shapes(chain):
    usdc = mint_of(chain.registry, "USDC")
    accounts = chain.result_of("getTokenAccountsByOwner", str(chain.wallet.pubkey()), {"mint": usdc})["value"]
    assert len(accounts) == 1
    balance = chain.result_of("getTokenAccountBalance", accounts[0]["pubkey"])["value"]
    assert balance == {"amount": "2000000000000", "decimals": 6, "uiAmount": 2000000.0, "uiAmountString": "2000000"}
    assert chain.call("getTokenAccountBalance", usdc)["error"]["code"] == -32602  # a mint, not an account
    assert ui_token_amount(1_500_001, 6)["uiAmountString"] == "1.500001"
    assert ui_token_amount(0, 9)["uiAmountString"] == "0"


def test_program_accounts_with_filters(chain):
    pools = chain.result_of(
        "getProgramAccounts",
        chain.registry["programs"]["meteora"],
        {"encoding": "base64", "filters": [{"memcmp": {"offset": 0, "bytes": b58encode(LB_PAIR_DISCRIMINATOR)}}]},
    )
    lb_pairs = {p["address"] for p in chain.registry["pools"] if p["dex"] == "meteora"}
    assert {row["pubkey"] for row in pools} == lb_pairs
    sized = chain.result_of("getProgramAccounts", TOKEN, {"filters": [{"dataSize": 82}], "withContext": True})
    assert mint_of(chain.registry, "USDC") in {row["pubkey"] for row in sized["value"]}


def test_statuses_follow_commitment_as_slots_pass(chain):
    tx = chain.swap()
    signature = chain.send(tx)["result"]
    statuses = lambda search=False: chain.result_of(  # noqa: E731
        "getSignatureStatuses", [signature], {"searchTransactionHistory": search}
    )["value"][0]
    assert statuses() is None  # accepted, not landed yet
    chain.ledger.tick()
    landed = statuses()
    assert landed == {
        "slot": landed["slot"],
        "confirmations": 0,
        "err": None,
        "status": {"Ok": None},
        "confirmationStatus": "processed",
    }
    chain.ledger.tick()
    assert statuses()["confirmationStatus"] == "confirmed" and statuses()["confirmations"] == 1
    assert chain.result_of("getTransaction", signature, {"maxSupportedTransactionVersion": 0}) is None
    chain.ledger.advance_to(landed["slot"] + FINALIZED_AFTER_SLOTS)
    assert statuses()["confirmationStatus"] == "finalized" and statuses()["confirmations"] is None
    got = chain.result_of("getTransaction", signature, {"maxSupportedTransactionVersion": 0})
    assert set(got["meta"]) >= {
        "err",
        "fee",
        "logMessages",
        "preTokenBalances",
        "postTokenBalances",
        "preBalances",
        "postBalances",
        "computeUnitsConsumed",
        "innerInstructions",
        "loadedAddresses",
    }
    message = got["transaction"]["message"]
    assert message["accountKeys"][0] == str(chain.wallet.pubkey())
    assert message["recentBlockhash"] == str(tx.message.recent_blockhash)
    chain.ledger.advance_to(landed["slot"] + STATUS_CACHE_SLOTS + 1)
    assert statuses() is None and statuses(search=True)["confirmationStatus"] == "finalized"


def test_landing_keeps_send_order(chain):
    first, second = chain.swap(10**7), chain.swap(2 * 10**7)
    s1, s2 = chain.send(first)["result"], chain.send(second)["result"]
    chain.ledger.tick()
    assert chain.ledger.records[first.signatures[0]].slot == chain.ledger.records[second.signatures[0]].slot
    assert list(chain.ledger.records)[-2:] == [first.signatures[0], second.signatures[0]]
    assert s1 != s2


def test_blockhash_expires_after_its_valid_slots(chain):
    tx = chain.swap()
    issued = chain.ledger.slot
    chain.ledger.advance_to(issued + 150)
    assert chain.result_of("isBlockhashValid", str(tx.message.recent_blockhash), {})["value"] is True
    chain.ledger.advance_to(issued + 151)
    error = chain.send(tx)["error"]
    assert error["code"] == -32002 and error["data"]["err"] == "BlockhashNotFound"
    sim = chain.result_of("simulateTransaction", base64.b64encode(bytes(tx)).decode(), {"encoding": "base64"})
    assert sim["value"]["err"] == "BlockhashNotFound"


def test_expiring_in_flight_never_lands(chain):
    tx = chain.swap()
    chain.ledger.faults.land_delay_slots = (200, 200)
    signature = chain.send(tx)["result"]
    chain.ledger.advance_to(chain.ledger.slot + 200)
    assert chain.result_of("getSignatureStatuses", [signature])["value"] == [None]


def test_simulate_options(chain):
    raw = base64.b64encode(bytes(chain.swap())).decode()
    error = chain.call(
        "simulateTransaction", raw, {"encoding": "base64", "sigVerify": True, "replaceRecentBlockhash": True}
    )
    assert error["error"]["code"] == -32602
    ok = chain.result_of("simulateTransaction", raw, {"encoding": "base64", "sigVerify": True})["value"]
    assert ok["err"] is None and ok["unitsConsumed"] > 0 and ok["logs"]
    forged = bytearray(base64.b64decode(raw))
    forged[5] ^= 1  # corrupt the signature
    bad = chain.result_of(
        "simulateTransaction", base64.b64encode(bytes(forged)).decode(), {"encoding": "base64", "sigVerify": True}
    )
    assert bad["value"]["err"] == "SignatureFailure"
    assert (
        chain.call("sendTransaction", base64.b64encode(bytes(forged)).decode(), {"encoding": "base64"})["error"]["code"]
        == -32003
    )


def test_airdrop_rent_and_fee(chain):
    who = Keypair().pubkey()
    signature = chain.result_of("requestAirdrop", str(who), 5 * 10**9)
    assert chain.result_of("getBalance", str(who))["value"] == 5 * 10**9
    assert chain.result_of("getSignatureStatuses", [signature])["value"][0]["err"] is None
    assert chain.result_of("getMinimumBalanceForRentExemption", 165) == 2_039_280
    message = base64.b64encode(to_bytes_versioned(chain.swap().message)).decode()
    assert chain.result_of("getFeeForMessage", message)["value"] == 5000


def test_fault_settings():
    faults = Faults()
    faults.update({"dropNextSends": 2, "landDelaySlots": [2, 4], "dropPpm": 0})
    assert faults.to_json()["landDelaySlots"] == [2, 4]
    import random

    rng = random.Random(1)
    assert [faults.should_drop("s", rng) for _ in range(3)] == [True, True, False]
    assert parse_delay("2-5") == (2, 5) and parse_delay("3") == (3, 3)
    for bad in ("0-1", "5-2", "x", [1, 2, 3]):
        with pytest.raises(FaultsError):
            parse_delay(bad)


def test_registry_matches_genesis_file():
    genesis = json.loads((PROJECT_DIR / "infra" / "localnet.json").read_text())
    pairs = {(p["dex"], p["base"], p["quote"]) for p in genesis["pools"]}
    assert len(pairs) == 16


def test_simulate_returns_accounts_as_the_swap_leaves_them(chain):
    from solders.token.associated import get_associated_token_address
    from solders.token.state import TokenAccount

    usdc = get_associated_token_address(chain.wallet.pubkey(), Pubkey.from_string(mint_of(chain.registry, "USDC")))
    raw = base64.b64encode(bytes(chain.swap(10**9))).decode()
    value = chain.result_of(
        "simulateTransaction", raw, {"encoding": "base64", "accounts": {"addresses": [str(usdc)], "encoding": "base64"}}
    )["value"]
    after = TokenAccount.from_bytes(base64.b64decode(value["accounts"][0]["data"][0])).amount
    now = int(chain.result_of("getTokenAccountBalance", str(usdc))["value"]["amount"])
    assert 140 * 10**6 < after - now < 143 * 10**6  # 1 SOL's worth, not applied
    assert chain.result_of("simulateTransaction", raw, {"encoding": "base64"})["value"]["accounts"] is None


def test_signatures_for_address_newest_first(chain):
    first, second = chain.swap(10**7), chain.swap(2 * 10**7)
    chain.send(first)
    chain.ledger.tick()
    chain.send(second)
    chain.ledger.tick()
    chain.ledger.tick()
    rows = chain.result_of("getSignaturesForAddress", str(chain.wallet.pubkey()), {"commitment": "confirmed"})
    assert [r["signature"] for r in rows] == [str(second.signatures[0]), str(first.signatures[0])]
    assert set(rows[0]) == {"signature", "slot", "err", "memo", "blockTime", "confirmationStatus"}
    assert rows[0]["confirmationStatus"] == "confirmed" and rows[0]["err"] is None
    older = chain.result_of(
        "getSignaturesForAddress",
        str(chain.wallet.pubkey()),
        {"commitment": "confirmed", "before": rows[0]["signature"]},
    )
    assert [r["signature"] for r in older] == [str(first.signatures[0])]
    assert chain.result_of("getSignaturesForAddress", str(chain.wallet.pubkey())) == []  # not finalized yet
    assert chain.result_of("getSignaturesForAddress", str(Keypair().pubkey()), {"commitment": "confirmed"}) == []


def test_wallet_file_created_private_and_reused(tmp_path):
    import os
    import stat

    from localnet.wallet import load_or_create_keypair

    path = tmp_path / "keys" / "wallet.json"
    created = load_or_create_keypair(path)
    content = json.loads(path.read_text())
    assert len(content) == 64 and all(isinstance(b, int) and 0 <= b < 256 for b in content)
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    assert load_or_create_keypair(path).pubkey() == created.pubkey()


def test_recent_prioritization_fees(chain):
    from solders.compute_budget import set_compute_unit_price

    sol, usdc = mint_of(chain.registry, "SOL"), mint_of(chain.registry, "USDC")
    pool = find_pool(chain.registry, "raydium", sol, usdc)
    blockhash = chain.result_of("getLatestBlockhash", {"commitment": "processed"})["value"]["blockhash"]
    swap = cpmm_swap(chain.registry, pool, chain.wallet.pubkey(), sol, 10**7, 1)
    chain.send(signed(chain.wallet, [set_compute_unit_price(7_000), swap], blockhash))
    chain.ledger.tick()
    landed_at = chain.ledger.slot
    chain.ledger.tick()
    fees = chain.result_of("getRecentPrioritizationFees", [pool["address"]])
    assert {"slot": landed_at, "prioritizationFee": 7_000} in fees
    assert all(f["prioritizationFee"] == 0 for f in fees if f["slot"] != landed_at)
    assert len(fees) <= 150 and fees[-1]["slot"] == chain.ledger.slot
    untouched = chain.result_of("getRecentPrioritizationFees", [str(Keypair().pubkey())])
    assert all(f["prioritizationFee"] == 0 for f in untouched)
