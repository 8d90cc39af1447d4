#!/usr/bin/env python3
"""boto3 calling send_event from THREADS threads against ENDPOINT: what a program does without participantd.

Each thread has its own client (botocore's advice for threads); every call is a real SendEvent
request (unsigned, as the service takes a bearer token). Prints one JSON object with the rate.

    python3 bench/boto3_send.py --endpoint http://127.0.0.1:18788 --threads 16 --seconds 10
"""
import argparse, json, threading, time, uuid

import boto3
from botocore import UNSIGNED
from botocore.config import Config


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--endpoint", required=True)
    parser.add_argument("--threads", type=int, default=16)
    parser.add_argument("--seconds", type=float, default=10)
    parser.add_argument("--warmup", type=float, default=1)
    args = parser.parse_args()

    config = Config(signature_version=UNSIGNED, retries={"max_attempts": 1}, max_pool_connections=2)
    clients = [boto3.session.Session().client("connectparticipant", region_name="us-east-1",
                                              endpoint_url=args.endpoint, config=config)
               for _ in range(args.threads)]
    start = time.monotonic()
    measure_from, stop_at = start + args.warmup, start + args.warmup + args.seconds
    counts, errors = [0] * args.threads, []

    def worker(index):
        client = clients[index]
        try:
            while True:
                begun = time.monotonic()
                if begun >= stop_at:
                    return
                client.send_event(ContentType="application/vnd.amazonaws.connect.event.message.read",
                                  Content=json.dumps({"messageId": str(uuid.uuid4())}),
                                  ConnectionToken=f"boto3-connection-{index}")
                if begun >= measure_from:
                    counts[index] += 1
        except Exception as error:
            errors.append(repr(error))

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(args.threads)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    print(json.dumps({"threads": args.threads, "requests": sum(counts), "seconds": args.seconds,
                      "rate": sum(counts) / args.seconds, "errors": errors[:5], "boto3": boto3.__version__}))


if __name__ == "__main__":
    main()
