"""Issue an API key to a client: its hash goes in the clients table, the key is printed once.

    python scripts/issue_key.py --name alice [--admin] [--table TABLE] [--usage-plan-id ID]

`--table` defaults to $CLIENTS_TABLE (the deployed stack's `ClientsTable`; locally the
runtime's `solana-exec-dev-ClientsTable`, with AWS_ENDPOINT_URL at the emulator). With
`--usage-plan-id` (the stack's `UsagePlan`), the client also gets an API Gateway API key in
that plan: its value is the client's usage key (not the secret), which the authorizer
returns as `usageIdentifierKey`, so the plan's rate applies per client. Nothing but the
hash of the secret is stored, and the secret is not logged: keep the printed line.
"""

from __future__ import annotations

import argparse
import os
import secrets
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from chalicelib.client_table import DynamoClientDirectory
from chalicelib.clients import Client, hash_key, new_key
from chalicelib.orders import utc_now_iso


def issue(name: str, admin: bool, table: str, usage_plan_id: str | None = None) -> str:
    """Store a new client and return its key (the only time it exists outside the caller)."""
    key = new_key()
    usage_key = "uk_" + secrets.token_urlsafe(24)
    DynamoClientDirectory(table).issue(hash_key(key), Client(name, admin, usage_key), utc_now_iso())
    if usage_plan_id:
        import boto3

        gateway = boto3.client("apigateway")
        api_key = gateway.create_api_key(name=f"solana-exec-{name}", value=usage_key, enabled=True)
        gateway.create_usage_plan_key(usagePlanId=usage_plan_id, keyId=api_key["id"], keyType="API_KEY")
    return key


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--name", required=True, help="the client's name (its orders are its own)")
    parser.add_argument("--admin", action="store_true", help="may call /api/dlq/*, /api/stats, /test/*")
    parser.add_argument("--table", default=os.environ.get("CLIENTS_TABLE"), help="clients table (env CLIENTS_TABLE)")
    parser.add_argument("--usage-plan-id", help="API Gateway usage plan to put the client's usage key in")
    args = parser.parse_args(argv)
    if not args.table:
        parser.error("--table or CLIENTS_TABLE is required")
    key = issue(args.name, args.admin, args.table, args.usage_plan_id)
    print(f"client {args.name}{' (admin)' if args.admin else ''}: x-api-key {key}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
