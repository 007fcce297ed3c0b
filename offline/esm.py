"""What the template says about an SQS event source mapping, and the checks Lambda makes on it.

Chalice's ``@app.on_sqs_message`` gives the queue, batch size, batching window and
``maximum_concurrency``; ``FunctionResponseTypes`` (and a ``ScalingConfig``) come from
the merged template (``chalice package --merge-template``), either on the function's
SAM ``Events`` or on an ``AWS::Lambda::EventSourceMapping``. Lambda refuses a mapping
whose maximum concurrency is outside 2-1000, or whose queue hides a message for less
time than the function may run; the local runtime refuses to start the same way.

* https://docs.aws.amazon.com/lambda/latest/dg/services-sqs-scaling.html
* https://docs.aws.amazon.com/AWSCloudFormation/latest/UserGuide/aws-properties-lambda-eventsourcemapping-scalingconfig.html
* https://docs.aws.amazon.com/lambda/latest/dg/services-sqs-configure.html
* https://docs.aws.amazon.com/lambda/latest/dg/services-sqs-errorhandling.html
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from chalice.utils import to_cfn_resource_name

__all__ = [
    "MappingError",
    "TemplateMapping",
    "check_maximum_concurrency",
    "check_visibility",
    "declared_visibility",
    "template_mapping",
]

MIN_MAXIMUM_CONCURRENCY = 2
MAX_MAXIMUM_CONCURRENCY = 1000


class MappingError(ValueError):
    """An event source mapping Lambda would refuse to create (InvalidParameterValueException)."""


@dataclass(frozen=True)
class TemplateMapping:
    report_batch_item_failures: bool = False
    maximum_concurrency: int | None = None


def _mapping(props: Mapping[str, Any]) -> TemplateMapping:
    types = props.get("FunctionResponseTypes") or []
    scaling = props.get("ScalingConfig") or {}
    maximum = scaling.get("MaximumConcurrency") if isinstance(scaling, Mapping) else None
    return TemplateMapping(
        report_batch_item_failures="ReportBatchItemFailures" in types,
        maximum_concurrency=int(maximum) if maximum is not None else None,
    )


def template_mapping(template: Mapping[str, Any] | None, function: str) -> TemplateMapping:
    """The template's settings for the SQS mapping of Chalice function ``function``."""
    if not template:
        return TemplateMapping()
    resources = template.get("Resources") or {}
    logical = to_cfn_resource_name(function)
    events = ((resources.get(logical) or {}).get("Properties") or {}).get("Events") or {}
    for name, event in events.items():
        props = (event or {}).get("Properties") or {}
        if (event or {}).get("Type", "SQS") == "SQS" and ("Queue" in props or str(name).endswith("SqsEventSource")):
            return _mapping(props)
    for resource in resources.values():
        if not isinstance(resource, Mapping) or resource.get("Type") != "AWS::Lambda::EventSourceMapping":
            continue
        props = resource.get("Properties") or {}
        if props.get("FunctionName") in ({"Ref": logical}, function):
            return _mapping(props)
    return TemplateMapping()


def declared_visibility(template: Mapping[str, Any] | None, queue_name: str | None) -> int | None:
    """The VisibilityTimeout the template gives queue ``queue_name`` (SQS's default 30 if unset), or None.

    The mapping is created against the stack's queue, so that is the value checked; a later
    change to the live queue (an operator's) is not re-validated, as on AWS.
    """
    for resource in ((template or {}).get("Resources") or {}).values():
        if not isinstance(resource, Mapping) or resource.get("Type") != "AWS::SQS::Queue":
            continue
        props = resource.get("Properties") or {}
        if props.get("QueueName") == queue_name:
            return int(props.get("VisibilityTimeout", 30))
    return None


def check_maximum_concurrency(function: str, value: int | None) -> None:
    if value is None:
        return
    if not MIN_MAXIMUM_CONCURRENCY <= int(value) <= MAX_MAXIMUM_CONCURRENCY:
        raise MappingError(
            f"{function}: MaximumConcurrency {value} is invalid: it must be between "
            f"{MIN_MAXIMUM_CONCURRENCY} and {MAX_MAXIMUM_CONCURRENCY} (ScalingConfig, "
            "https://docs.aws.amazon.com/lambda/latest/dg/services-sqs-scaling.html)"
        )


def check_visibility(function: str, queue: str, visibility_s: int, timeout_s: float) -> None:
    if visibility_s < timeout_s:
        raise MappingError(
            f"{function}: Queue visibility timeout: {visibility_s} seconds is less than Function timeout: "
            f"{int(timeout_s)} seconds (queue {queue}; "
            "https://docs.aws.amazon.com/lambda/latest/dg/services-sqs-configure.html)"
        )
