#!/usr/bin/env python3
"""boto3 against participantd's SendEvent route, as a program would use it: only endpoint_url changes.

Run by SendEventAPITests (Swift) with the daemon's loopback address; prints one JSON line with what
it saw and exits 1 on the first expectation that fails. Usage: boto3_send_event.py ENDPOINT_URL
"""
import json
import sys
import uuid

import boto3
from botocore import UNSIGNED
from botocore.config import Config

TYPES = [
    "application/vnd.amazonaws.connect.event.typing",
    "application/vnd.amazonaws.connect.event.connection.acknowledged",
    "application/vnd.amazonaws.connect.event.message.delivered",
    "application/vnd.amazonaws.connect.event.message.read",
]


def fail(message):
    print(json.dumps({"ok": False, "failure": message}))
    sys.exit(1)


def main():
    endpoint = sys.argv[1]
    client = boto3.client(
        "connectparticipant",
        region_name="us-east-1",
        endpoint_url=endpoint,
        config=Config(signature_version=UNSIGNED, retries={"max_attempts": 1}),
    )
    seen = {"sent": [], "duplicate": None, "validation": None, "access_denied": None}

    for index, content_type in enumerate(TYPES):
        kwargs = {"ContentType": content_type, "ConnectionToken": f"boto3-connection-{index}"}
        if "message." in content_type:
            kwargs["Content"] = json.dumps({"messageId": str(uuid.uuid4())})
        answer = client.send_event(**kwargs)  # boto3 fills ClientToken itself
        if ":" in answer["Id"] or not answer["AbsoluteTime"].endswith("Z"):
            fail(f"{content_type}: not the service's answer: {answer['Id']} {answer['AbsoluteTime']}")
        seen["sent"].append({"ContentType": content_type, "Id": answer["Id"]})

    token = str(uuid.uuid4())
    first = client.send_event(ContentType=TYPES[0], ConnectionToken="boto3-duplicate", ClientToken=token)
    second = client.send_event(ContentType=TYPES[0], ConnectionToken="boto3-duplicate", ClientToken=token)
    if first["Id"] != second["Id"]:
        fail(f"the same ClientToken answered two Ids: {first['Id']} {second['Id']}")
    seen["duplicate"] = first["Id"]

    try:
        client.send_event(ContentType="text/plain", ConnectionToken="boto3-invalid")
        fail("an invalid ContentType was accepted")
    except client.exceptions.ValidationException as error:
        message = error.response["Error"]["Message"]
        if "ContentType" not in message:
            fail(f"the ValidationException does not name the field: {message}")
        seen["validation"] = message

    try:
        client.send_event(ContentType=TYPES[0], ConnectionToken="refused-by-the-service")
        fail("a connection the service refuses was answered 200")
    except client.exceptions.AccessDeniedException as error:
        seen["access_denied"] = error.response["Error"]["Message"]

    seen["ok"] = True
    print(json.dumps(seen))


if __name__ == "__main__":
    main()
