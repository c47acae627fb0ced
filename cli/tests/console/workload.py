"""A producer or a consumer process on a queue file, for the console test.

    workload.py produce DB   publishes order-N to "orders" every 20 ms, and "poison-1"
                             once, first
    workload.py consume DB   acks shipping's deliveries, up to 50 every 0.1 s, but nacks
                             poison ones while the file DB.fixed does not exist (the
                             bug the operator fixes before redriving)
"""

from __future__ import annotations

import os
import sys
import time

import ferrymq


def produce(q: ferrymq.Queue) -> None:
    q.publish("orders", b"poison", key="poison-1", tag="created")
    n = 0
    while True:
        n += 1
        q.publish("orders", f'{{"order": {n}}}'.encode(), key=f"order-{n}", tag="created")
        time.sleep(0.02)


def consume(q: ferrymq.Queue, fixed: str) -> None:
    while True:
        for d in q.receive("shipping", max=50, wait=0.5):
            if d.payload == b"poison" and not os.path.exists(fixed):
                d.nack("ValueError: cannot ship a poison order")
            else:
                d.ack()
        time.sleep(0.1)


if __name__ == "__main__":
    role, db = sys.argv[1], sys.argv[2]
    queue = ferrymq.Queue(db)
    if role == "produce":
        produce(queue)
    else:
        consume(queue, db + ".fixed")
