"""SQS queues and the API Gateway Management API (`@connections`), through boto3."""

from __future__ import annotations

import json
import threading
from typing import Any, Literal

import boto3
from botocore.config import Config
from botocore.exceptions import ClientError

from chalicelib.logs import logger

__all__ = ["ApiGatewayNotifier", "SqsQueue"]

# Many worker threads share one client; botocore clients are thread-safe but the default
# pool of 10 connections would make them queue behind each other.
_CLIENT_CONFIG = Config(max_pool_connections=50, retries={"max_attempts": 3, "mode": "standard"})


class _LazyClient:
    """A boto3 client made on first use, never at import (Lambda's cold start stays cheap)."""

    def __init__(self, service: Literal["sqs", "apigatewaymanagementapi"], endpoint: str | None = None) -> None:
        self._service = service
        self._endpoint = endpoint
        self._client: Any = None
        self._lock = threading.Lock()

    @property
    def client(self) -> Any:
        if self._client is None:
            with self._lock:
                if self._client is None:
                    self._client = boto3.client(self._service, endpoint_url=self._endpoint, config=_CLIENT_CONFIG)
        return self._client


class SqsQueue(_LazyClient):
    """One SQS queue, addressed by URL."""

    def __init__(self, url: str) -> None:
        super().__init__("sqs")
        self.url = url
        self._arn: str | None = None
        self._no_move_tasks = False

    def send(self, body: dict[str, Any]) -> None:
        self.client.send_message(QueueUrl=self.url, MessageBody=json.dumps(body, separators=(",", ":")))

    def send_batch(self, bodies: list[dict[str, Any]], delay_s: int = 0) -> None:
        """Up to ten messages per SendMessageBatch; an entry SQS refuses is sent again on its own.

        `delay_s` (SQS DelaySeconds, at most 900): the messages become visible that much later.
        """
        delay = max(0, min(int(delay_s), 900))
        for start in range(0, len(bodies), 10):
            chunk = bodies[start : start + 10]
            entries: list[dict[str, Any]] = [
                {"Id": str(i), "MessageBody": json.dumps(b, separators=(",", ":"))} for i, b in enumerate(chunk)
            ]
            if delay:
                entries = [{**e, "DelaySeconds": delay} for e in entries]
            answer = self.client.send_message_batch(QueueUrl=self.url, Entries=entries)
            for failed in answer.get("Failed", []):
                body = json.dumps(chunk[int(failed["Id"])], separators=(",", ":"))
                self.client.send_message(QueueUrl=self.url, MessageBody=body, DelaySeconds=delay)

    def change_visibility(self, receipt_handle: str, seconds: int) -> None:
        self.client.change_message_visibility(
            QueueUrl=self.url, ReceiptHandle=receipt_handle, VisibilityTimeout=max(0, min(seconds, 43200))
        )

    def receive(self, max_messages: int = 10, wait_s: int = 0, visibility_s: int = 30) -> list[dict[str, Any]]:
        """Messages as `{"id", "receipt", "body", "receiveCount"}` dicts."""
        answer = self.client.receive_message(
            QueueUrl=self.url,
            MaxNumberOfMessages=max(1, min(max_messages, 10)),
            WaitTimeSeconds=wait_s,
            VisibilityTimeout=visibility_s,
            AttributeNames=["ApproximateReceiveCount"],
        )
        return [
            {
                "id": m["MessageId"],
                "receipt": m["ReceiptHandle"],
                "body": json.loads(m["Body"]),
                "receiveCount": int(m.get("Attributes", {}).get("ApproximateReceiveCount", 1)),
            }
            for m in answer.get("Messages", [])
        ]

    def delete(self, receipts: list[str]) -> None:
        for start in range(0, len(receipts), 10):
            chunk = receipts[start : start + 10]
            self.client.delete_message_batch(
                QueueUrl=self.url, Entries=[{"Id": str(i), "ReceiptHandle": r} for i, r in enumerate(chunk)]
            )

    def arn(self) -> str:
        if self._arn is None:
            attrs = self.client.get_queue_attributes(QueueUrl=self.url, AttributeNames=["QueueArn"])["Attributes"]
            self._arn = str(attrs["QueueArn"])
        return self._arn

    def release(self, receipts: list[str]) -> None:
        """Make received messages visible again at once (ChangeMessageVisibilityBatch, timeout 0)."""
        for start in range(0, len(receipts), 10):
            chunk = receipts[start : start + 10]
            self.client.change_message_visibility_batch(
                QueueUrl=self.url,
                Entries=[{"Id": str(i), "ReceiptHandle": r, "VisibilityTimeout": 0} for i, r in enumerate(chunk)],
            )

    def move_to(self, destination: SqsQueue) -> bool:
        """Move this dead-letter queue's visible messages to ``destination`` with StartMessageMoveTask.

        SQS moves them itself, bodies unchanged, asynchronously (a moment later they are in
        ``destination``). False, and nothing moved, where the endpoint has no message move
        tasks (moto); that answer is remembered.
        """
        if self._no_move_tasks:
            return False
        try:
            self.client.start_message_move_task(SourceArn=self.arn(), DestinationArn=destination.arn())
        except (ClientError, NotImplementedError) as exc:  # NotImplementedError: moto's in-process mock
            code = exc.response.get("Error", {}).get("Code", "") if isinstance(exc, ClientError) else ""
            # A task already running on the queue (a concurrent redrive) is no emulator gap: ask again next time.
            self._no_move_tasks = "InvalidParameterValue" not in code
            logger.info("no message move task", extra={"queue": self.url, "error": code or str(exc)})
            return False
        return True

    def depth(self) -> int:
        """Messages in the queue, visible or in flight (SQS's approximate counts)."""
        waiting, in_flight = self.counts()
        return waiting + in_flight

    def counts(self) -> tuple[int, int]:
        """(waiting, in flight): SQS's approximate visible and not-visible counts."""
        attrs = self.client.get_queue_attributes(
            QueueUrl=self.url,
            AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"],
        )["Attributes"]
        waiting = int(attrs.get("ApproximateNumberOfMessages", 0))
        return waiting, int(attrs.get("ApproximateNumberOfMessagesNotVisible", 0))


class ApiGatewayNotifier(_LazyClient):
    """Pushes to WebSocket clients with PostToConnection; a 410 means the client is gone.

    The endpoint comes from WEBSOCKET_API_ENDPOINT (set by the template on AWS); left unset,
    boto3 takes AWS_ENDPOINT_URL_APIGATEWAYMANAGEMENTAPI, which the local runtime sets.
    """

    def __init__(self, endpoint: str | None) -> None:
        super().__init__("apigatewaymanagementapi", endpoint)

    def post(self, connection_id: str, message: dict[str, Any]) -> bool:
        data = json.dumps(message, separators=(",", ":")).encode()
        try:
            self.client.post_to_connection(ConnectionId=connection_id, Data=data)
        except ClientError as exc:
            if _is_gone(exc):
                return False
            raise
        return True

    def connected(self, connection_id: str) -> bool:
        """Is the connection still open? (GetConnection: 410 once it is gone)."""
        try:
            self.client.get_connection(ConnectionId=connection_id)
        except ClientError as exc:
            if _is_gone(exc):
                return False
            raise
        return True

    def close(self, connection_id: str) -> None:
        try:
            self.client.delete_connection(ConnectionId=connection_id)
        except ClientError as exc:
            if not _is_gone(exc):
                raise


def _is_gone(exc: ClientError) -> bool:
    error = exc.response.get("Error", {})
    status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode")
    return error.get("Code") == "GoneException" or status == 410
