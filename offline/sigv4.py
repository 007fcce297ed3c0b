"""IAM (SigV4) authorization on REST routes, checked locally as API Gateway checks it.

A route is IAM-authorized when the template's REST API ``DefinitionBody`` gives it a
``security`` entry whose scheme has ``x-amazon-apigateway-authtype: awsSigv4``, or when
its Chalice route has an ``IAMAuthorizer``. API Gateway then refuses a request without a
signature (403 "Missing Authentication Token") and one whose signature does not verify
(403 ``InvalidSignatureException``). Locally the only credentials that can sign are the
runtime's own (its AWS access key id and secret): what IAM policy allows is not played,
so any principal holding them is allowed.
"""

from __future__ import annotations

import hmac
import os
import re
from collections.abc import Mapping
from typing import Any

from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials
from chalice.app import Chalice, IAMAuthorizer

__all__ = ["SigV4Routes", "signature_error"]

_AUTH = re.compile(
    r"AWS4-HMAC-SHA256\s+Credential=(?P<akid>[^/]+)/(?P<date>\d{8})/(?P<region>[^/]+)/(?P<service>[^/]+)/aws4_request,"
    r"\s*SignedHeaders=(?P<signed>[^,]+),\s*Signature=(?P<signature>[0-9a-f]{64})"
)


class SigV4Routes:
    """The (path, METHOD) pairs of the app that need a SigV4 signature."""

    def __init__(self, routes: set[tuple[str, str]]) -> None:
        self.routes = routes

    def __contains__(self, route: tuple[str, str]) -> bool:
        return route in self.routes

    @classmethod
    def from_template(cls, template: Mapping[str, Any], app_object: Chalice, rest_api: str = "RestAPI") -> SigV4Routes:
        routes: set[tuple[str, str]] = set()
        resources = template.get("Resources") or {}
        body = ((resources.get(rest_api) or {}).get("Properties") or {}).get("DefinitionBody") or {}
        schemes = {
            name
            for name, scheme in (body.get("securityDefinitions") or {}).items()
            if isinstance(scheme, dict) and scheme.get("x-amazon-apigateway-authtype") == "awsSigv4"
        }
        for path, methods in (body.get("paths") or {}).items():
            for method, spec in (methods or {}).items():
                names = {name for entry in (spec or {}).get("security") or [] for name in entry}
                if names & schemes:
                    routes.add((str(path), str(method).upper()))
        for path, methods in app_object.routes.items():
            for method, entry in methods.items():
                if isinstance(entry.authorizer, IAMAuthorizer):
                    routes.add((path, method))
        return cls(routes)


def signature_error(
    method: str, url: str, headers: Mapping[str, str], body: bytes | None, env: Mapping[str, str] | None = None
) -> str | None:
    """None if the request is signed with the runtime's credentials, else API Gateway's message."""
    env = os.environ if env is None else env
    lowered = {k.lower(): v for k, v in headers.items()}
    authorization = lowered.get("authorization")
    if not authorization:
        return "Missing Authentication Token"
    found = _AUTH.match(authorization.strip())
    if found is None or "x-amz-date" not in lowered:
        return "Authorization header requires 'Credential', 'SignedHeaders', 'Signature' and 'X-Amz-Date'"
    if not hmac.compare_digest(found["akid"], env.get("AWS_ACCESS_KEY_ID", "")):
        return "The security token included in the request is invalid."
    signed = found["signed"].split(";")
    if "host" not in signed or any(name not in lowered for name in signed):
        return "The request signature we calculated does not match the signature you provided."
    request = AWSRequest(method=method, url=url, data=body or b"", headers={name: lowered[name] for name in signed})
    request.context["timestamp"] = lowered["x-amz-date"]
    signer = SigV4Auth(
        Credentials(found["akid"], env.get("AWS_SECRET_ACCESS_KEY", ""), lowered.get("x-amz-security-token")),
        found["service"],
        found["region"],
    )
    expected = signer.signature(signer.string_to_sign(request, signer.canonical_request(request)), request)
    if not hmac.compare_digest(expected, found["signature"]):
        return "The request signature we calculated does not match the signature you provided."
    return None
