"""Real processes on one file: two Python processes, a Python producer with a Rust
consumer, Ctrl-C during a wait, the GIL released while waiting, and fork detection."""

from __future__ import annotations

import os
import pathlib
import signal
import subprocess
import sys
import threading
import time

import pytest

import ferrymq
from conftest import run_python, rust_binary

PRODUCE_AND_CONSUME = """
import sys, ferrymq
db, me, n = sys.argv[1], sys.argv[2], int(sys.argv[3])
q = ferrymq.Queue(db)
for i in range(n):
    q.publish("t", f"{me}-{i}")
q.publish("done", me)
acked = []
while True:
    ds = q.receive("g", max=16, wait=0.2)
    if not ds:
        s = q.stats()
        if s.topics.get("done") and s.topics["done"].messages == 2 and s.groups["g"].ready == 0:
            break
        continue
    for d in ds:
        d.ack()
        acked.append(d.payload.decode())
print("\\n".join(acked))
"""


def test_two_python_processes_share_one_file(db: pathlib.Path) -> None:
    with ferrymq.Queue(db) as q:
        q.subscribe("g", "t")
    procs = [
        subprocess.Popen([sys.executable, "-c", PRODUCE_AND_CONSUME, str(db), me, "300"], stdout=subprocess.PIPE, text=True)
        for me in ["a", "b"]
    ]
    outs = [p.communicate(timeout=120)[0] for p in procs]
    assert all(p.returncode == 0 for p in procs)
    acked = [line for out in outs for line in out.split()]
    assert sorted(acked) == sorted(f"{me}-{i}" for me in ["a", "b"] for i in range(300))


def test_a_python_producer_and_a_rust_consumer(db: pathlib.Path) -> None:
    consumer = subprocess.Popen(
        [str(rust_binary("rust_consumer")), str(db), "rust-side", "orders", "25"], stdout=subprocess.PIPE, text=True
    )
    assert consumer.stdout is not None
    assert consumer.stdout.readline().strip() == "READY"
    with ferrymq.Queue(db) as q:
        for i in range(25):
            q.publish("orders", f"order-{i}".encode(), key=f"order-{i}")
    out, _ = consumer.communicate(timeout=60)
    assert consumer.returncode == 0
    assert out.split() == [f"order-{i}" for i in range(25)]


def test_ctrl_c_interrupts_a_waiting_receive(db: pathlib.Path) -> None:
    with ferrymq.Queue(db) as q:
        q.subscribe("g", "t")
    # A runner started in the background (`cmd &` in a shell without job control) hands
    # its children SIGINT ignored; the child takes Python's handler back.
    code = """
import signal, sys, ferrymq
signal.signal(signal.SIGINT, signal.default_int_handler)
q = ferrymq.Queue(sys.argv[1])
print("waiting", flush=True)
try:
    q.receive("g", wait=60)
except KeyboardInterrupt:
    print("interrupted", flush=True)
"""
    p = subprocess.Popen([sys.executable, "-c", code, str(db)], stdout=subprocess.PIPE, text=True)
    assert p.stdout is not None and p.stdout.readline().strip() == "waiting"
    time.sleep(0.2)
    start = time.monotonic()
    p.send_signal(signal.SIGINT)
    out, _ = p.communicate(timeout=20)
    assert "interrupted" in out
    assert time.monotonic() - start < 10


def test_other_threads_run_while_one_waits(db: pathlib.Path) -> None:
    q = ferrymq.Queue(db)
    q.subscribe("g", "t")
    ticks = 0
    stop = threading.Event()

    def tick() -> None:
        nonlocal ticks
        while not stop.is_set():
            ticks += 1
            time.sleep(0.001)

    t = threading.Thread(target=tick)
    t.start()
    assert q.receive("g", wait=0.5) == []
    stop.set()
    t.join()
    assert ticks > 50, ticks
    q.close()


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs fork")
def test_a_forked_child_must_reopen(db: pathlib.Path) -> None:
    code = """
import os, sys, ferrymq
q = ferrymq.Queue(sys.argv[1])
pid = os.fork()
if pid == 0:
    try:
        q.publish("t", b"x")
        os._exit(1)
    except ferrymq.ClosedError as e:
        ok = "fork" in str(e)
        q2 = ferrymq.Queue(sys.argv[1])
        q2.publish("t", b"from the child")
        os._exit(0 if ok else 2)
_, status = os.waitpid(pid, 0)
print(os.waitstatus_to_exitcode(status))
"""
    r = run_python(code, str(db))
    assert r.stdout.strip() == "0", r.stderr
