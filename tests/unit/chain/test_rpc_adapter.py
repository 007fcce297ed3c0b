"""The JSON-RPC adapter against responses in the shapes Solana's RPC documentation gives.

A tiny HTTP server on a free loopback port answers each method with the documented
example (solana.com/docs/rpc/http/<method>); the test checks what the adapter sent and
what it made of the answer.
"""

from __future__ import annotations

import base64
import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from chalicelib.cluster import ClusterError, SendRejected
from chalicelib.rpc import RpcCluster

SIG = "5VERv8NMvzbJMEkV8xnrLkEaWRtSz9CosKDYjCJjBRnbJLgp8uirBgmQpjKhoR4tjF3ZpRzrFmBV6UjKdiSZkQUW"
WALLET = "7BgBvyjrZX1YKz4oh9mjb8ZScatkkwb8DzFx7LoiVkM3"
USDC = "EPjFWdd5AufqSSqeM2qN1xzybapC8G4wEGGkZwyTDt1v"

DOCUMENTED: dict[str, Any] = {
    "getLatestBlockhash": {
        "result": {
            "context": {"slot": 2792},
            "value": {"blockhash": "EkSnNWid2cvwEVnVx9aBqawnmiCNiDgp3gUdkDPTKN1N", "lastValidBlockHeight": 3090},
        }
    },
    "getBlockHeight": {"result": 1233},
    "getSignatureStatuses": {
        "result": {
            "context": {"slot": 82},
            "value": [
                {
                    "slot": 48,
                    "confirmations": None,
                    "err": None,
                    "status": {"Ok": None},
                    "confirmationStatus": "finalized",
                },
                None,
            ],
        }
    },
    "simulateTransaction": {
        "result": {
            "context": {"slot": 218},
            "value": {
                "err": None,
                "accounts": None,
                "logs": [
                    "Program 83astBRguLMdt2h5U1Tpdq5tjFoJ6noeGwaY3mDLVcri invoke [1]",
                    "Program 83astBRguLMdt2h5U1Tpdq5tjFoJ6noeGwaY3mDLVcri consumed 2366 of 1400000 compute units",
                    "Program 83astBRguLMdt2h5U1Tpdq5tjFoJ6noeGwaY3mDLVcri success",
                ],
                "returnData": None,
                "unitsConsumed": 2366,
            },
        }
    },
    "sendTransaction": {"result": SIG},
    "getRecentPrioritizationFees": {
        "result": [
            {"slot": 348125, "prioritizationFee": 0},
            {"slot": 348126, "prioritizationFee": 1000},
            {"slot": 348127, "prioritizationFee": 500},
        ]
    },
    "getMultipleAccounts": {
        "result": {
            "context": {"slot": 1},
            "value": [
                {
                    "data": [base64.b64encode(b"\x01\x02\x03").decode(), "base64"],
                    "executable": False,
                    "lamports": 1000000000,
                    "owner": "11111111111111111111111111111111",
                    "rentEpoch": 2,
                    "space": 3,
                },
                None,
            ],
        }
    },
    "getTransaction": {
        "result": {
            "blockTime": 1656604342,
            "meta": {
                "computeUnitsConsumed": 40213,
                "err": None,
                "fee": 10000,
                "innerInstructions": [],
                "logMessages": ["Program CPMMoo8L3F4NbTegBCKVNunggL7H1ZpdTHKxQB5qKP1C invoke [1]"],
                "postBalances": [499990000, 1],
                "postTokenBalances": [
                    {
                        "accountIndex": 1,
                        "mint": USDC,
                        "owner": WALLET,
                        "programId": "TokenkegQfeZyiNwAJbNbGKPFXCWuBvf9Ss623VQ5DA",
                        "uiTokenAmount": {"amount": "1500000", "decimals": 6, "uiAmount": 1.5, "uiAmountString": "1.5"},
                    }
                ],
                "preBalances": [500000000, 1],
                "preTokenBalances": [
                    {
                        "accountIndex": 1,
                        "mint": USDC,
                        "owner": WALLET,
                        "programId": "TokenkegQfeZyiNwAJbNbGKPFXCWuBvf9Ss623VQ5DA",
                        "uiTokenAmount": {
                            "amount": "250000",
                            "decimals": 6,
                            "uiAmount": 0.25,
                            "uiAmountString": "0.25",
                        },
                    }
                ],
                "rewards": [],
                "status": {"Ok": None},
            },
            "slot": 140512999,
            "transaction": {"message": {}, "signatures": [SIG]},
            "version": 0,
        }
    },
}

PREFLIGHT_FAILURE = {
    "error": {
        "code": -32002,
        "message": "Transaction simulation failed: Error processing Instruction 2: custom program error: 0x1775",
        "data": {
            "accounts": None,
            "err": {"InstructionError": [2, {"Custom": 6005}]},
            "logs": ["Program log: AnchorError occurred. Error Code: ExceededSlippage. Error Number: 6005."],
            "unitsConsumed": 21000,
        },
    }
}


class Server:
    def __init__(self) -> None:
        self.requests: list[dict[str, Any]] = []
        self.answers: dict[str, Any] = dict(DOCUMENTED)
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                request = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                outer.requests.append(request)
                answer = {"jsonrpc": "2.0", "id": request["id"], **outer.answers[request["method"]]}
                body = json.dumps(answer).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *_args: Any) -> None:
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"

    def last(self) -> dict[str, Any]:
        return self.requests[-1]


@pytest.fixture
def server() -> Iterator[Server]:
    s = Server()
    thread = threading.Thread(target=s.httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield s
    finally:
        s.httpd.shutdown()
        s.httpd.server_close()


def test_latest_blockhash_and_block_height(server):
    rpc = RpcCluster(server.url)
    latest = rpc.latest_blockhash()
    assert (latest.blockhash, latest.last_valid_block_height) == ("EkSnNWid2cvwEVnVx9aBqawnmiCNiDgp3gUdkDPTKN1N", 3090)
    assert server.last()["params"] == [{"commitment": "confirmed"}]
    assert rpc.block_height() == 1233


def test_signature_statuses_keep_unknown_signatures_as_none(server):
    rpc = RpcCluster(server.url)
    found, missing = rpc.signature_statuses([SIG, "1" * 88], search_history=True)
    assert missing is None
    assert found is not None and found.slot == 48 and found.err is None and found.reached("finalized")
    assert server.last()["params"][1] == {"searchTransactionHistory": True}


def test_send_is_base64_without_the_nodes_own_retries_and_a_preflight_failure_carries_the_program_error(server):
    rpc = RpcCluster(server.url)
    raw = b"signed-bytes"
    assert rpc.send_transaction(raw, skip_preflight=True) == SIG
    params = server.last()["params"]
    assert base64.b64decode(params[0]) == raw
    assert params[1] == {"encoding": "base64", "skipPreflight": True, "maxRetries": 0}
    server.answers["sendTransaction"] = PREFLIGHT_FAILURE
    with pytest.raises(SendRejected) as caught:
        rpc.send_transaction(raw)
    assert caught.value.code == -32002
    assert caught.value.err == {"InstructionError": [2, {"Custom": 6005}]}
    assert "ExceededSlippage" in caught.value.logs[0]


def test_simulate_gives_err_logs_and_units(server):
    sim = RpcCluster(server.url).simulate_transaction(b"tx")
    assert sim.err is None and sim.units_consumed == 2366 and len(sim.logs) == 3
    assert server.last()["params"][1]["sigVerify"] is False


def test_transaction_details_give_the_owners_token_balance_changes(server):
    details = RpcCluster(server.url).transaction(SIG)
    assert details is not None
    assert (details.slot, details.fee, details.compute_units, details.err) == (140512999, 10000, 40213, None)
    assert details.token_change(WALLET, USDC) == 1_250_000
    assert details.token_change("someone-else", USDC) == 0
    assert server.last()["params"][1]["maxSupportedTransactionVersion"] == 0
    server.answers["getTransaction"] = {"result": None}
    assert RpcCluster(server.url).transaction(SIG) is None


def test_accounts_decode_base64_data_and_missing_accounts(server):
    present, absent = RpcCluster(server.url).accounts(["A", "B"])
    assert absent is None
    assert present is not None and present.data == b"\x01\x02\x03" and present.lamports == 10**9
    assert server.last()["params"][1]["encoding"] == "base64"


def test_a_json_rpc_error_and_an_unreachable_cluster_are_cluster_errors(server):
    server.answers["getBlockHeight"] = {"error": {"code": -32005, "message": "Node is behind by 42 slots"}}
    with pytest.raises(ClusterError, match="behind"):
        RpcCluster(server.url).block_height()
    with pytest.raises(ClusterError, match="unreachable"):
        RpcCluster("http://127.0.0.1:9", timeout_s=1).block_height()
    with pytest.raises(ValueError):
        RpcCluster("ftp://example")


def test_recent_prioritization_fees_per_slot(server):
    assert RpcCluster(server.url).recent_prioritization_fees(["CxELquR1gPP8wHe33gZ4QxqGB3sZ9RSwsJ2KshVewkFY"]) == [
        0,
        1000,
        500,
    ]
    assert server.last()["params"] == [["CxELquR1gPP8wHe33gZ4QxqGB3sZ9RSwsJ2KshVewkFY"]]
