"""Run a Chalice app locally the way AWS runs it.

``offline`` plays API Gateway (REST through Chalice's own local gateway, the
WebSocket API and its ``@connections`` management API) and Lambda's SQS
event source mapping, on top of an AWS emulator (moto by default, or
whatever ``AWS_ENDPOINT_URL`` points to). It is generic: everything is
discovered from the Chalice app object and a CloudFormation template.

    from offline import LocalRuntime
    with LocalRuntime("path/to/project", template="infra/resources.json") as rt:
        print(rt.urls)
"""

from __future__ import annotations

from .emulator import Emulator, ensure_dummy_credentials, free_port, resolve_emulator, start_moto
from .provision import ProvisionResult, load_template, provision, provision_template
from .runtime import LocalRuntime, Urls
from .sqs import SqsPoller, failed_ids, to_lambda_record
from .websocket import WebSocketGateway

__all__ = [
    "Emulator",
    "LocalRuntime",
    "ProvisionResult",
    "SqsPoller",
    "Urls",
    "WebSocketGateway",
    "ensure_dummy_credentials",
    "failed_ids",
    "free_port",
    "load_template",
    "provision",
    "provision_template",
    "resolve_emulator",
    "start_moto",
    "to_lambda_record",
]
