"""The clients table (pynamodb): one item per issued key, by the key's SHA-256, never the key."""

from __future__ import annotations

from pynamodb.attributes import BooleanAttribute, UnicodeAttribute
from pynamodb.exceptions import DoesNotExist
from pynamodb.models import Model

from chalicelib.clients import Client

__all__ = ["ClientModel", "DynamoClientDirectory"]


class ClientModel(Model):
    class Meta:
        table_name = "solana-exec-clients"

    keyHash = UnicodeAttribute(hash_key=True)
    client = UnicodeAttribute()
    admin = BooleanAttribute(default=False)
    usageKey = UnicodeAttribute(default="")
    createdAt = UnicodeAttribute(null=True)


class DynamoClientDirectory:
    """Looks a key hash up with one GetItem (an authorizer's result is cached by API Gateway)."""

    def __init__(self, table_name: str) -> None:
        ClientModel.Meta.table_name = table_name

    def find(self, key_hash: str) -> Client | None:
        try:
            item = ClientModel.get(key_hash)
        except DoesNotExist:
            return None
        return Client(name=item.client, admin=bool(item.admin), usage_key=item.usageKey or "")

    def issue(self, key_hash: str, client: Client, created_at: str) -> None:
        ClientModel(
            key_hash, client=client.name, admin=client.admin, usageKey=client.usage_key, createdAt=created_at
        ).save(condition=ClientModel.keyHash.does_not_exist())
