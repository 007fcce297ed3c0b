"""The cluster port: what the engine needs from a Solana cluster, whatever serves it.

`chalicelib.rpc.RpcCluster` speaks Solana JSON-RPC over HTTP (the local cluster, devnet,
mainnet, any provider); `chalicelib.svm_cluster.SvmCluster` is the in-memory twin on an
in-process LiteSVM, for unit tests. Amounts are integers (lamports, token base units).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal, Protocol

__all__ = [
    "Account",
    "Blockhash",
    "Cluster",
    "ClusterError",
    "Commitment",
    "SendRejected",
    "SignatureStatus",
    "Simulation",
    "TokenBalance",
    "TransactionDetails",
]

Commitment = Literal["processed", "confirmed", "finalized"]
_RANK = {"processed": 0, "confirmed": 1, "finalized": 2}


class ClusterError(Exception):
    """The cluster could not be reached or answered with an error (transport, JSON-RPC)."""

    def __init__(self, message: str, code: int | None = None, data: Any = None) -> None:
        super().__init__(message)
        self.code = code
        self.data = data


class SendRejected(ClusterError):
    """sendTransaction refused the transaction (preflight failed, blockhash not found, ...)."""

    @property
    def err(self) -> Any:
        return self.data.get("err") if isinstance(self.data, dict) else None

    @property
    def logs(self) -> list[str]:
        logs = self.data.get("logs") if isinstance(self.data, dict) else None
        return list(logs or [])


@dataclass(frozen=True)
class Blockhash:
    blockhash: str
    last_valid_block_height: int


@dataclass(frozen=True)
class Simulation:
    err: Any  # None on success; the TransactionError JSON otherwise
    logs: list[str]
    units_consumed: int | None


@dataclass(frozen=True)
class SignatureStatus:
    slot: int
    confirmations: int | None
    err: Any
    confirmation_status: str | None  # processed | confirmed | finalized

    def reached(self, commitment: Commitment) -> bool:
        status = self.confirmation_status or ("finalized" if self.confirmations is None else "processed")
        return _RANK.get(status, -1) >= _RANK[commitment]


@dataclass(frozen=True)
class TokenBalance:
    account_index: int
    mint: str
    owner: str | None
    amount: int  # base units (uiTokenAmount.amount)
    decimals: int


@dataclass(frozen=True)
class TransactionDetails:
    slot: int
    err: Any
    fee: int  # lamports
    compute_units: int | None
    logs: list[str]
    pre_token_balances: list[TokenBalance] = field(default_factory=list)
    post_token_balances: list[TokenBalance] = field(default_factory=list)
    block_time: int | None = None

    def token_change(self, owner: str, mint: str) -> int:
        """The net change of `owner`'s balance of `mint` over the transaction, in base units."""

        def total(balances: list[TokenBalance]) -> int:
            return sum(b.amount for b in balances if b.owner == owner and b.mint == mint)

        return total(self.post_token_balances) - total(self.pre_token_balances)


@dataclass(frozen=True)
class Account:
    owner: str
    lamports: int
    data: bytes
    executable: bool = False


class Cluster(Protocol):
    """The engine's only way to a chain."""

    def latest_blockhash(self, commitment: Commitment = "confirmed") -> Blockhash: ...

    def block_height(self, commitment: Commitment = "confirmed") -> int: ...

    def send_transaction(self, raw: bytes, *, skip_preflight: bool = False) -> str:
        """Relay a signed transaction; returns its signature. Raises SendRejected."""

    def simulate_transaction(self, raw: bytes, *, sig_verify: bool = False) -> Simulation: ...

    def signature_statuses(
        self, signatures: list[str], *, search_history: bool = False
    ) -> list[SignatureStatus | None]: ...

    def transaction(self, signature: str, commitment: Commitment = "confirmed") -> TransactionDetails | None: ...

    def accounts(self, addresses: list[str], commitment: Commitment = "confirmed") -> list[Account | None]: ...

    def recent_prioritization_fees(self, addresses: list[str]) -> list[int]:
        """Micro-lamports per compute unit paid to write these accounts, one per recent slot."""
