"""A local Solana cluster: the venues' real programs on LiteSVM, served as Solana JSON-RPC.

A stand-in for a cluster, as offline/ is for AWS: it takes a genesis file and knows nothing
of the engine. Run it with ``python -m localnet`` or, from Python, ``ClusterProcess``.
"""

from __future__ import annotations

from .process import ClusterProcess, ClusterStartError, rpc_call

__all__ = ["ClusterProcess", "ClusterStartError", "rpc_call"]
