"""Reading the packaged template: functions, roles, policies, and the grants a policy allows."""

from __future__ import annotations

import re
from typing import Any

FUNCTION = "AWS::Serverless::Function"

Grant = tuple[str, str]  # (IAM action, resource key), as in tests/infra/aws_calls.py


def functions(template: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {k: v["Properties"] for k, v in template["Resources"].items() if v["Type"] == FUNCTION}


def role_of(template: dict[str, Any], function: str) -> str:
    role = functions(template)[function]["Role"]
    assert isinstance(role, dict) and "Fn::GetAtt" in role, f"{function} has no role of its own: {role}"
    return str(role["Fn::GetAtt"][0])


def statements(document: dict[str, Any]) -> list[dict[str, Any]]:
    found = document["Statement"]
    return found if isinstance(found, list) else [found]


def _as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def resource_key(resource: Any) -> str:
    """A policy Resource as the key aws_calls records: `OrdersTable`, `OrdersTable/index`, `WebsocketAPI/POST`."""
    if isinstance(resource, dict) and set(resource) == {"Ref"}:  # a secret's Ref is its ARN
        return str(resource["Ref"])
    if isinstance(resource, dict) and "Fn::GetAtt" in resource:
        name, attribute = resource["Fn::GetAtt"]
        assert attribute == "Arn", resource
        return str(name)
    if isinstance(resource, dict) and "Fn::Sub" in resource and isinstance(resource["Fn::Sub"], str):
        text = resource["Fn::Sub"]
        index = re.fullmatch(r"\$\{(\w+)\.Arn\}/index/\*", text)
        if index:
            return f"{index.group(1)}/index"
        ws = re.fullmatch(
            r"arn:\$\{AWS::Partition\}:execute-api:\$\{AWS::Region\}:\$\{AWS::AccountId\}:"
            r"\$\{(WebsocketAPI)\}/\*/(GET|POST|DELETE)/@connections/\*",
            text,
        )
        if ws:
            return f"{ws.group(1)}/{ws.group(2)}"
    raise AssertionError(f"policy resource not scoped to a template resource: {resource!r}")


def attached_policies(template: dict[str, Any], role: str) -> list[str]:
    refs = template["Resources"][role]["Properties"].get("ManagedPolicyArns", [])
    names = []
    for ref in refs:
        assert isinstance(ref, dict) and set(ref) == {"Ref"}, f"{role}: managed policy outside the template: {ref}"
        names.append(str(ref["Ref"]))
    return names


def grants_of_role(template: dict[str, Any], role: str) -> set[Grant]:
    """What the template's managed policies attached to ``role`` allow, as (action, resource key)."""
    allowed: set[Grant] = set()
    for policy in attached_policies(template, role):
        resource = template["Resources"][policy]
        assert resource["Type"] == "AWS::IAM::ManagedPolicy"
        for statement in statements(resource["Properties"]["PolicyDocument"]):
            assert statement["Effect"] == "Allow"
            for action in _as_list(statement["Action"]):
                for target in _as_list(statement["Resource"]):
                    allowed.add((str(action), resource_key(target)))
    return allowed
