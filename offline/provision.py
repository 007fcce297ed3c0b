"""Create a template's DynamoDB tables and SQS queues on an emulator.

The same CloudFormation/SAM file that is merged into ``chalice package`` on
AWS is read here, so local and deployed resources cannot drift apart. Only
what the handlers need locally is understood: ``AWS::DynamoDB::Table``,
``AWS::SQS::Queue`` and the intrinsic functions used to point the handlers
at them (``Ref``, ``Fn::GetAtt``, ``Fn::Sub``, ``Fn::Join``). Everything is
idempotent: existing tables and queues are kept as they are.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import boto3
from botocore.exceptions import ClientError

from .logs import log, log_error

TABLE_TYPE = "AWS::DynamoDB::Table"
QUEUE_TYPE = "AWS::SQS::Queue"
DEFAULT_ACCOUNT_ID = "123456789012"  # moto's; only if the emulator names none (LocalStack's is 000000000000)

# CloudFormation table properties that map 1:1 onto CreateTable parameters.
_TABLE_PARAMS = (
    "AttributeDefinitions",
    "KeySchema",
    "BillingMode",
    "GlobalSecondaryIndexes",
    "LocalSecondaryIndexes",
    "ProvisionedThroughput",
    "StreamSpecification",
    "Tags",
)
# CloudFormation queue properties that are SQS queue attributes of the same name.
_QUEUE_ATTRIBUTES = (
    "VisibilityTimeout",
    "MessageRetentionPeriod",
    "DelaySeconds",
    "ReceiveMessageWaitTimeSeconds",
    "MaximumMessageSize",
    "FifoQueue",
    "ContentBasedDeduplication",
    "DeduplicationScope",
    "FifoThroughputLimit",
    "KmsMasterKeyId",
    "KmsDataKeyReusePeriodSeconds",
    "SqsManagedSseEnabled",
    "RedrivePolicy",
    "RedriveAllowPolicy",
)


class Unresolvable(ValueError):
    """An intrinsic refers to something this runtime does not create."""


@dataclass
class Created:
    """Physical identity of one provisioned resource, for Ref / GetAtt."""

    type: str
    ref: str  # what {"Ref": id} yields: table name, queue URL
    attributes: dict[str, str] = field(default_factory=dict)


@dataclass
class ProvisionResult:
    """What :func:`provision_template` made, and the environment it resolves."""

    resources: dict[str, Created]
    env: dict[str, str]
    skipped_env: dict[str, str]  # variable -> reason it was not resolved


class _Resolver:
    """Evaluates CloudFormation intrinsics against the resources created so far."""

    def __init__(
        self, created: dict[str, Created], pseudo: dict[str, str], find_account: Callable[[], str] | None = None
    ) -> None:
        self.created = created
        self.pseudo = pseudo
        self.find_account = find_account

    def ref(self, name: str) -> str:
        if name == "AWS::AccountId" and name not in self.pseudo:
            self.pseudo[name] = self.account_id()
        if name in self.pseudo:
            return self.pseudo[name]
        if name in self.created:
            return self.created[name].ref
        raise Unresolvable(f"Ref {name}")

    def account_id(self) -> str:
        """The emulator's account, from an ARN it made (moto: 123456789012, LocalStack: 000000000000)."""
        for res in self.created.values():
            parts = res.attributes.get("Arn", "").split(":")
            if len(parts) > 4 and parts[4].isdigit():
                return parts[4]
        return self.find_account() if self.find_account is not None else DEFAULT_ACCOUNT_ID

    def get_att(self, name: str, attribute: str) -> str:
        res = self.created.get(name)
        if res is None or attribute not in res.attributes:
            raise Unresolvable(f"Fn::GetAtt {name}.{attribute}")
        return res.attributes[attribute]

    def sub(self, template: str, variables: dict[str, Any]) -> str:
        def replace(match: re.Match[str]) -> str:
            expr = match.group(1)
            if expr.startswith("!"):
                return "${" + expr[1:] + "}"
            if expr in variables:
                return str(self.resolve(variables[expr]))
            if "." in expr and not expr.startswith("AWS::"):
                name, attribute = expr.split(".", 1)
                return self.get_att(name, attribute)
            return self.ref(expr)

        return re.sub(r"\$\{([^}]+)\}", replace, template)

    def resolve(self, value: Any) -> Any:
        """Recursively replace intrinsic functions inside ``value``."""
        if isinstance(value, list):
            return [self.resolve(v) for v in value]
        if not isinstance(value, dict):
            return value
        if len(value) == 1:
            ((key, arg),) = value.items()
            if key == "Ref":
                return self.ref(str(arg))
            if key == "Fn::GetAtt":
                parts = arg.split(".", 1) if isinstance(arg, str) else list(arg)
                return self.get_att(str(parts[0]), str(self.resolve(parts[1])))
            if key == "Fn::Sub":
                if isinstance(arg, str):
                    return self.sub(arg, {})
                return self.sub(str(arg[0]), dict(arg[1]))
            if key == "Fn::Join":
                sep, items = arg
                return str(sep).join(str(self.resolve(i)) for i in items)
            if key.startswith("Fn::") or key == "Condition":
                raise Unresolvable(key)
        return {k: self.resolve(v) for k, v in value.items()}


def _references(value: Any) -> set[str]:
    """Logical ids a property value points to (for dependency ordering)."""
    found: set[str] = set()
    if isinstance(value, list):
        for v in value:
            found |= _references(v)
    elif isinstance(value, dict):
        for key, arg in value.items():
            if key == "Ref" and isinstance(arg, str):
                found.add(arg)
            elif key == "Fn::GetAtt":
                found.add(arg.split(".")[0] if isinstance(arg, str) else str(arg[0]))
            elif key == "Fn::Sub":
                text = arg if isinstance(arg, str) else arg[0]
                for expr in re.findall(r"\$\{([^}!]+)\}", str(text)):
                    found.add(expr.split(".")[0])
                found |= _references(arg)
            else:
                found |= _references(arg)
    return found


def _dependency_order(resources: dict[str, Any]) -> list[str]:
    """Logical ids sorted so that every resource follows those it references."""
    order: list[str] = []
    state: dict[str, int] = {}

    def visit(name: str) -> None:
        if state.get(name) == 2:
            return
        if state.get(name) == 1:
            raise ValueError(f"circular reference through {name}")
        state[name] = 1
        deps = _references(resources[name].get("Properties", {}))
        deps |= set(_as_list(resources[name].get("DependsOn")))
        for dep in sorted(deps):
            if dep in resources:
                visit(dep)
        state[name] = 2
        order.append(name)

    for name in resources:
        visit(name)
    return order


def _as_list(value: Any) -> list[str]:
    if value is None:
        return []
    return [value] if isinstance(value, str) else list(value)


def _error_code(err: ClientError) -> str:
    return str(err.response.get("Error", {}).get("Code", ""))


def _attr_string(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (dict, list)):
        return json.dumps(value)
    return str(value)


def _create_table(ddb: Any, logical_id: str, props: dict[str, Any], name: str) -> Created:
    try:
        desc = ddb.describe_table(TableName=name)["Table"]
        log("provision_skip", resource=logical_id, type=TABLE_TYPE, name=name)
    except ClientError as err:
        if _error_code(err) != "ResourceNotFoundException":
            raise
        params = {k: props[k] for k in _TABLE_PARAMS if k in props}
        params.setdefault("BillingMode", "PAY_PER_REQUEST")
        if params["BillingMode"] == "PROVISIONED":
            params.setdefault("ProvisionedThroughput", {"ReadCapacityUnits": 5, "WriteCapacityUnits": 5})
        desc = ddb.create_table(TableName=name, **params)["TableDescription"]
        ddb.get_waiter("table_exists").wait(TableName=name, WaiterConfig={"Delay": 0.2, "MaxAttempts": 100})
        log("provision_create", resource=logical_id, type=TABLE_TYPE, name=name)
    ttl = props.get("TimeToLiveSpecification")
    if ttl and ttl.get("Enabled"):
        try:
            ddb.update_time_to_live(
                TableName=name,
                TimeToLiveSpecification={"AttributeName": ttl["AttributeName"], "Enabled": True},
            )
        except ClientError as err:  # already enabled, or the emulator lacks TTL
            log("provision_ttl_skipped", resource=logical_id, reason=_error_code(err))
    attributes = {"Arn": str(desc.get("TableArn", ""))}
    if desc.get("LatestStreamArn"):
        attributes["StreamArn"] = str(desc["LatestStreamArn"])
    return Created(type=TABLE_TYPE, ref=name, attributes=attributes)


def _create_queue(sqs: Any, logical_id: str, props: dict[str, Any], name: str) -> Created:
    try:
        url = sqs.get_queue_url(QueueName=name)["QueueUrl"]
        log("provision_skip", resource=logical_id, type=QUEUE_TYPE, name=name)
    except ClientError as err:
        if "NonExistentQueue" not in _error_code(err) and _error_code(err) != ("QueueDoesNotExist"):
            raise
        attributes = {k: _attr_string(props[k]) for k in _QUEUE_ATTRIBUTES if k in props}
        url = sqs.create_queue(QueueName=name, Attributes=attributes)["QueueUrl"]
        log("provision_create", resource=logical_id, type=QUEUE_TYPE, name=name)
    arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    return Created(
        type=QUEUE_TYPE,
        ref=url,
        attributes={"Arn": arn, "QueueName": name, "QueueUrl": url},
    )


def caller_account(session: boto3.session.Session, endpoint_url: str | None) -> str:
    """The account the emulator answers for, asked through STS; the default if it has no STS."""
    try:
        return str(session.client("sts", endpoint_url=endpoint_url).get_caller_identity()["Account"])
    except Exception as err:  # noqa: BLE001 - any failure means "not served here"
        log("provision_account_default", account=DEFAULT_ACCOUNT_ID, reason=type(err).__name__)
        return DEFAULT_ACCOUNT_ID


def load_template(template_path: str | Path) -> dict[str, Any]:
    """Read a JSON CloudFormation/SAM template."""
    with open(template_path, encoding="utf-8") as fh:
        data = json.load(fh)
    if not isinstance(data, dict):
        raise ValueError(f"{template_path}: not a template object")
    return data


def provision_template(
    template: dict[str, Any],
    *,
    session: boto3.session.Session | None = None,
    endpoint_url: str | None = None,
    name_prefix: str = "local",
) -> ProvisionResult:
    """Create the template's tables and queues; resolve ``Globals`` env vars.

    ``endpoint_url`` of ``None`` lets boto3 pick the endpoint from
    ``AWS_ENDPOINT_URL`` / ``AWS_ENDPOINT_URL_<SERVICE>`` itself, so a mixed
    setup (SQS on LocalStack, DynamoDB on moto) works unchanged. Resources
    without an explicit name get ``{name_prefix}-{LogicalId}``.
    """
    session = session or boto3.session.Session()
    ddb = session.client("dynamodb", endpoint_url=endpoint_url)
    sqs = session.client("sqs", endpoint_url=endpoint_url)
    region = session.region_name or ddb.meta.region_name
    pseudo = {
        "AWS::Region": region,
        "AWS::Partition": "aws",
        "AWS::URLSuffix": "amazonaws.com",
        "AWS::StackName": name_prefix,
        "AWS::NoValue": "",
    }
    # A parameter resolves to its Default, as a stack created without overrides has it.
    for name, parameter in (template.get("Parameters") or {}).items():
        if isinstance(parameter, dict) and "Default" in parameter:
            pseudo.setdefault(name, str(parameter["Default"]))
    created: dict[str, Created] = {}
    resolver = _Resolver(created, pseudo, lambda: caller_account(session, endpoint_url))
    resources: dict[str, Any] = template.get("Resources", {}) or {}
    wanted = {k: v for k, v in resources.items() if v.get("Type") in (TABLE_TYPE, QUEUE_TYPE)}
    for logical_id in _dependency_order(wanted):
        spec = wanted[logical_id]
        props = resolver.resolve(spec.get("Properties", {}) or {})
        if spec["Type"] == TABLE_TYPE:
            name = props.get("TableName") or f"{name_prefix}-{logical_id}"
            created[logical_id] = _create_table(ddb, logical_id, props, name)
        else:
            name = props.get("QueueName") or f"{name_prefix}-{logical_id}"
            if _attr_string(props.get("FifoQueue", False)) == "true" and not name.endswith(".fifo"):
                name += ".fifo"
            created[logical_id] = _create_queue(sqs, logical_id, props, name)

    env: dict[str, str] = {}
    skipped: dict[str, str] = {}
    variables = (template.get("Globals", {}).get("Function", {}).get("Environment", {}).get("Variables", {})) or {}
    for key, raw in variables.items():
        try:
            env[key] = _attr_string(resolver.resolve(raw))
        except (Unresolvable, TypeError, ValueError, IndexError) as err:
            skipped[key] = str(err)
            log("provision_env_skipped", variable=key, reason=str(err))
    return ProvisionResult(resources=created, env=env, skipped_env=skipped)


def provision(
    template_path: str | Path,
    session: boto3.session.Session | None = None,
    name_prefix: str = "local",
    endpoint_url: str | None = None,
) -> dict[str, str]:
    """Provision a template file and return the handlers' environment.

    The convenience entry point for tests and benchmarks: the returned dict
    maps each ``Globals.Function.Environment.Variables`` name to its local
    value (table name, queue URL, ...). Unresolvable variables are left out.
    """
    try:
        template = load_template(template_path)
    except (OSError, ValueError) as err:
        log_error("provision_failed", err, template=str(template_path))
        raise
    result = provision_template(template, session=session, endpoint_url=endpoint_url, name_prefix=name_prefix)
    return result.env
