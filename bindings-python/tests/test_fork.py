"""fork(): a parent holding a Queue (with a checker) forks workers that open their own
queues on the same file and publish while the parent closes and exits. Every publish a
worker saw return must be in the file afterwards, and the file must stay sound."""

from __future__ import annotations

import os
import pathlib
import sqlite3
import time

import pytest

import ferrymq
from conftest import run_python

pytestmark = pytest.mark.skipif(not hasattr(os, "fork"), reason="needs fork")

ROUNDS = int(os.environ.get("FERRYMQ_FORK_ROUNDS", "20"))
PUBLISHES = int(os.environ.get("FERRYMQ_FORK_PUBLISHES", "10000"))
WORKERS = 8

PARENT = """
import os, sys, ferrymq
db, out, workers, n = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
q = ferrymq.Queue(db)
q.set_checker("jobs", lambda info: ferrymq.Resolution.COMMIT)
q.publish("jobs", b"from the parent")
for w in range(workers):
    if os.fork() == 0:
        code = 0
        try:
            mine = ferrymq.Queue(db)
            ids = [mine.publish("jobs", f"{w}-{i}") for i in range(n)]
            mine.close()
            with open(f"{out}/ids-{w}", "w") as f:
                f.write("\\n".join(map(str, ids)))
        except BaseException as e:
            with open(f"{out}/ids-{w}", "w") as f:
                f.write(f"ERROR {e!r}")
            code = 1
        os.rename(f"{out}/ids-{w}", f"{out}/done-{w}")
        os._exit(code)
# The parent closes and exits while its workers publish.
q.close()
"""


def wait_for_workers(out: pathlib.Path, timeout: float) -> list[int]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        done = sorted(out.glob("done-*"))
        if len(done) == WORKERS:
            ids: list[int] = []
            for f in done:
                text = f.read_text()
                assert not text.startswith("ERROR"), text
                ids.extend(int(line) for line in text.split())
            return ids
        time.sleep(0.05)
    raise AssertionError(f"workers did not finish: {sorted(p.name for p in out.iterdir())}")


def test_forked_workers_lose_no_confirmed_publish(tmp_path: pathlib.Path) -> None:
    for round_ in range(ROUNDS):
        db, out = tmp_path / f"fork-{round_}.db", tmp_path / f"out-{round_}"
        out.mkdir()
        r = run_python(PARENT, str(db), str(out), str(WORKERS), str(PUBLISHES))
        assert r.returncode == 0, r.stderr
        confirmed = wait_for_workers(out, timeout=300)
        assert len(confirmed) == WORKERS * PUBLISHES
        conn = sqlite3.connect(db)
        try:
            stored = {row[0] for row in conn.execute("SELECT id FROM ferrymq_messages")}
            check = conn.execute("PRAGMA integrity_check").fetchone()[0]
        finally:
            conn.close()
        lost = [i for i in confirmed if i not in stored]
        assert lost == [], f"round {round_}: {len(lost)} confirmed publishes lost"
        assert check == "ok"


def test_close_in_a_forked_child_returns_and_leaves_the_parent_working(db: pathlib.Path) -> None:
    code = """
import os, sys, ferrymq
q = ferrymq.Queue(sys.argv[1])
q.set_checker("jobs", lambda info: ferrymq.Resolution.COMMIT)
pid = os.fork()
if pid == 0:
    try:
        q.publish("jobs", b"x")
        os._exit(1)
    except ferrymq.ClosedError:
        q.close()  # the checker thread is the parent's: nothing to join here
        os._exit(0)
_, status = os.waitpid(pid, 0)
q.publish("jobs", b"the parent still publishes")
q.close()
print(os.waitstatus_to_exitcode(status))
"""
    r = run_python(code, str(db), timeout=30)
    assert r.stdout.strip() == "0", r.stderr


def test_a_child_forked_inside_a_transaction_refuses_that_file(tmp_path: pathlib.Path) -> None:
    code = """
import os, sys, ferrymq
q = ferrymq.Queue(sys.argv[1])
with q.transaction() as tx:
    tx.publish("jobs", b"the parent's")
    pid = os.fork()
    if pid == 0:
        try:
            ferrymq.Queue(sys.argv[1])
            os._exit(1)
        except ferrymq.StorageError as e:
            other = ferrymq.Queue(sys.argv[2])
            other.publish("jobs", b"another file is fine")
            os._exit(0 if "forked" in str(e) else 2)
    _, status = os.waitpid(pid, 0)
print(os.waitstatus_to_exitcode(status), q.stats().topics["jobs"].messages)
"""
    r = run_python(code, str(tmp_path / "q.db"), str(tmp_path / "other.db"), timeout=30)
    assert r.stdout.split() == ["0", "1"], r.stderr
