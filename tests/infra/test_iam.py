"""Each function's policy allows exactly the AWS actions its code calls, on the template's resources.

The calls are found by running every handler through its flows against moto
(see aws_calls.py); the event source mapping's own needs are added for the SQS consumers.
"""

from __future__ import annotations

import pytest
from moto import mock_aws

from .aws_calls import FUNCTIONS, record_function_grants
from .template_model import Grant, functions, grants_of_role, role_of

# What Lambda's SQS event source mapping does with the function's role (AWS Lambda docs,
# "Execution role permissions" for Amazon SQS): the function's code never calls these itself.
ESM_ACTIONS = ("sqs:ReceiveMessage", "sqs:DeleteMessage", "sqs:GetQueueAttributes")
ESM_QUEUES = {"OrderWorker": "OrdersQueue", "WsReplay": "ReplayQueue"}


@pytest.fixture(scope="module")
def called() -> dict[str, set[Grant]]:
    monkeypatch = pytest.MonkeyPatch()
    try:
        monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
        monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
        monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
        monkeypatch.delenv("AWS_ENDPOINT_URL", raising=False)
        monkeypatch.delenv("AWS_ENDPOINT_URL_APIGATEWAYMANAGEMENTAPI", raising=False)
        with mock_aws():
            recorder = record_function_grants(monkeypatch)
    finally:
        monkeypatch.undo()
    assert recorder.unmapped == [], f"calls to resources outside the template: {recorder.unmapped}"
    by_logical_id = {FUNCTIONS[name]: grants for name, grants in recorder.grants.items()}
    for function, queue in ESM_QUEUES.items():
        by_logical_id.setdefault(function, set()).update((action, queue) for action in ESM_ACTIONS)
    return by_logical_id


def test_every_function_of_the_app_was_exercised(dev_template, called):
    assert set(functions(dev_template)) == set(FUNCTIONS.values()), "a new function: teach aws_calls.py to drive it"
    assert set(called) == set(FUNCTIONS.values())


@pytest.mark.parametrize("function", sorted(FUNCTIONS.values()))
def test_policy_allows_what_the_code_calls_and_nothing_more(dev_template, called, function):
    # GIVEN the function's policy in the packaged template and the calls its code made
    allowed = grants_of_role(dev_template, role_of(dev_template, function))
    # THEN nothing it calls is denied, and nothing it never calls is allowed
    missing = sorted(called[function] - allowed)
    extra = sorted(allowed - called[function])
    assert not missing, f"{function} calls actions its policy (infra/resources.json) does not allow: {missing}"
    assert not extra, f"{function}'s policy allows actions its code never calls: {extra}"
