"""The event an SQS trigger hands a Lambda function, and what its answer means for each message
(``ReportBatchItemFailures``)."""

from __future__ import annotations

from typing import Any


def sqs_event(messages: list[dict[str, Any]], queue_arn: str, region: str) -> dict[str, Any]:
    """Received SQS messages -> the event Lambda hands the function."""
    return {"Records": [_record(m, queue_arn, region) for m in messages]}


def _record(message: dict[str, Any], queue_arn: str, region: str) -> dict[str, Any]:
    attributes = {
        name: {
            "stringValue": value.get("StringValue"),
            "binaryValue": value.get("BinaryValue"),
            "stringListValues": [],
            "binaryListValues": [],
            "dataType": value["DataType"],
        }
        for name, value in message.get("MessageAttributes", {}).items()
    }
    return {
        "messageId": message["MessageId"],
        "receiptHandle": message["ReceiptHandle"],
        "body": message["Body"],
        "attributes": message.get("Attributes", {}),
        "messageAttributes": attributes,
        "md5OfBody": message["MD5OfBody"],
        "eventSource": "aws:sqs",
        "eventSourceARN": queue_arn,
        "awsRegion": region,
    }


def failed_ids(
    messages: list[dict[str, Any]], response: Any, report_batch_item_failures: bool = True
) -> set[str]:
    """Which messages stay in the queue after an invocation that returned ``response``.

    A malformed ``batchItemFailures`` (unknown or empty id) fails the whole batch, as in Lambda.
    Without ``ReportBatchItemFailures`` on the mapping, Lambda ignores what the function names:
    it returned, so the whole batch is done.
    """
    if not report_batch_item_failures:
        return set()
    ids = {m["MessageId"] for m in messages}
    failures = (response or {}).get("batchItemFailures", []) if isinstance(response, dict) else []
    named = {f.get("itemIdentifier") for f in failures}
    return ids if not named <= ids else named
