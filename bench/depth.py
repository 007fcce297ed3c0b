"""python -m bench depth [--depths 10,1000] [--samples 50]: the emulator's SQS calls at a given queue depth.

An order's SQS calls (SendMessage on POST, ReceiveMessage by the event source mapping,
DeleteMessageBatch after the handler) and DynamoDB UpdateItem, timed one at a time against
our own moto on a free loopback port, with the queue holding `depth` messages first. The
number of calls an order makes does not depend on the depth (see `python -m bench seed`);
this shows whether each call's cost does.
"""

from __future__ import annotations

import argparse
import shlex
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import boto3

from tests.support import moto_server

__all__ = ["main"]

CREDENTIALS = {"aws_access_key_id": "testing", "aws_secret_access_key": "testing", "region_name": "us-east-1"}
BODY = '{"orderId": "00000000-0000-0000-0000-000000000000", "round": 1, "order": {"request": {}}}'


def _ms(samples: list[float]) -> dict[str, float]:
    ordered = sorted(samples)
    return {
        "p50": round(statistics.median(ordered), 2),
        "p90": round(ordered[int(0.9 * (len(ordered) - 1))], 2),
        "mean": round(statistics.fmean(ordered), 2),
    }


def measure(endpoint: str, depth: int, samples: int) -> dict[str, Any]:
    sqs = boto3.client("sqs", endpoint_url=endpoint, **CREDENTIALS)
    ddb = boto3.client("dynamodb", endpoint_url=endpoint, **CREDENTIALS)
    url = sqs.create_queue(QueueName=f"depth-{depth}", Attributes={"VisibilityTimeout": "600"})["QueueUrl"]
    for start in range(0, depth, 10):
        entries = [{"Id": str(i), "MessageBody": BODY} for i in range(min(10, depth - start))]
        sqs.send_message_batch(QueueUrl=url, Entries=entries)
    table = f"depth-{depth}"
    ddb.create_table(
        TableName=table,
        KeySchema=[{"AttributeName": "k", "KeyType": "HASH"}],
        AttributeDefinitions=[{"AttributeName": "k", "AttributeType": "S"}],
        BillingMode="PAY_PER_REQUEST",
    )
    timings: dict[str, list[float]] = {"SendMessage": [], "ReceiveMessage": [], "DeleteMessageBatch": []}
    timings["UpdateItem"] = []
    for i in range(samples):
        t0 = time.perf_counter()
        sqs.send_message(QueueUrl=url, MessageBody=BODY)
        t1 = time.perf_counter()
        got = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=1, AttributeNames=["All"])["Messages"]
        t2 = time.perf_counter()
        # the depth stays as it was: one in, one received (invisible), deleted
        sqs.delete_message_batch(QueueUrl=url, Entries=[{"Id": "0", "ReceiptHandle": got[0]["ReceiptHandle"]}])
        t3 = time.perf_counter()
        ddb.update_item(
            TableName=table,
            Key={"k": {"S": str(i % 10)}},
            UpdateExpression="SET v = :v",
            ExpressionAttributeValues={":v": {"N": str(i)}},
            ReturnValues="ALL_NEW",
        )
        t4 = time.perf_counter()
        for name, took in zip(timings, (t1 - t0, t2 - t1, t3 - t2, t4 - t3), strict=True):
            timings[name].append(took * 1000)
    return {"depth": depth, "samples": samples, "ms": {name: _ms(values) for name, values in timings.items()}}


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench depth", description=__doc__)
    parser.add_argument("--depths", default="10,1000", help="comma-separated queue depths")
    parser.add_argument("--samples", type=int, default=50, help="calls timed per operation and depth (1..500)")
    args = parser.parse_args(argv)
    depths = [int(d) for d in args.depths.split(",")]
    if not 1 <= args.samples <= 500 or not all(0 <= d <= 20000 for d in depths):
        parser.error("--samples 1..500, depths 0..20000")
    with tempfile.TemporaryDirectory() as logs, moto_server(Path(logs)) as endpoint:
        results = [measure(endpoint, depth, args.samples) for depth in depths]
    print("emulator (our moto) call latency by queue depth, one call at a time, ms p50 / p90 / mean")
    for result in results:
        cells = "  ".join(f"{name} {v['p50']} / {v['p90']} / {v['mean']}" for name, v in result["ms"].items())
        print(f"  depth {result['depth']:>6}: {cells}")
    command = ["python", "-m", "bench", "depth", "--depths", args.depths, "--samples", str(args.samples)]
    print("repeat with: " + " ".join(shlex.quote(c) for c in command))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
