"""A soak worker in Python: `produce <db> <rate> <seconds>` or `consume <db>`.

A producer publishes `rate` messages a second, paced, each carrying its publish time;
a consumer receives in batches, acks each, and prints one JSON line a second with its
count and the publish-to-receive latencies seen in that second. Both stop on SIGTERM
and print a final line with their totals."""

import json
import signal
import sys
import time

import ferrymq

TOPIC, GROUP = "soak", "soak"
stop = False


def on_term(*_: object) -> None:
    global stop
    stop = True


def produce(q: ferrymq.Queue, rate: float) -> None:
    pad = "x" * 200
    sent = 0
    start = time.monotonic()
    while not stop:
        due = start + sent / rate
        now = time.monotonic()
        if due > now:
            time.sleep(due - now)
            continue
        q.publish(TOPIC, json.dumps({"t": time.time_ns(), "pad": pad}).encode())
        sent += 1
    print(json.dumps({"final": True, "published": sent}), flush=True)


def consume(q: ferrymq.Queue) -> None:
    total = 0
    window: list[float] = []
    next_report = time.monotonic() + 1
    while not stop:
        for d in q.receive(GROUP, max=50, wait=0.2):
            window.append((time.time_ns() - json.loads(d.payload)["t"]) / 1e6)
            d.ack()
            total += 1
        if time.monotonic() >= next_report:
            print(json.dumps({"n": len(window), "latencies_ms": window}), flush=True)
            window = []
            next_report += 1
    print(json.dumps({"final": True, "acked": total}), flush=True)


def main() -> None:
    signal.signal(signal.SIGTERM, on_term)
    role, db = sys.argv[1], sys.argv[2]
    q = ferrymq.Queue(db)
    if role == "produce":
        produce(q, float(sys.argv[3]))
    else:
        consume(q)
    q.close()


if __name__ == "__main__":
    main()
