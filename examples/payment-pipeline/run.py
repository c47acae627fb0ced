"""The payment pipeline: five services in four languages, as separate OS processes on one
SQLite file, with a process killed in the middle, ending in a reconciliation report.

    order service (Python)  --orders/created-->  payment center (Node, 2 processes)
      --payments/paid (half message)-->  production (Kotlin)  --production/done-->
      logistics (Rust)  --logistics/shipped-->  order service (completes the order)

Usage: run.py [--db FILE] [--orders N] [--poison IDS] [--no-kill] [--timeout S]
Exit status 0 when the reconciliation holds: every order completed exactly once or in the
dead-letter queue with its reason, and no money moved twice.
"""

from __future__ import annotations

import argparse
import json
import os
import pathlib
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass, field
from typing import Any, Optional

import ferrymq

HERE = pathlib.Path(__file__).resolve().parent
ROOT = HERE.parents[1]

SCHEMA = [
    "CREATE TABLE orders(id INTEGER PRIMARY KEY, amount INTEGER NOT NULL, status TEXT NOT NULL,"
    " completed_count INTEGER NOT NULL DEFAULT 0)",
    # The bank's own books: another company's system, idempotent by out_trade_no.
    "CREATE TABLE bank_charges(out_trade_no TEXT PRIMARY KEY, amount INTEGER NOT NULL,"
    " charged_at TEXT NOT NULL DEFAULT CURRENT_TIMESTAMP)",
    "CREATE TABLE production(order_id INTEGER NOT NULL)",
    "CREATE TABLE shipments(order_id INTEGER NOT NULL)",
]


def ms(*delays: int) -> list[float]:
    return [d / 1000 for d in delays]


def setup(db: pathlib.Path) -> None:
    for suffix in ("", "-wal", "-shm"):
        pathlib.Path(f"{db}{suffix}").unlink(missing_ok=True)
    with ferrymq.Queue(db) as q:
        with q.transaction() as tx:
            for sql in SCHEMA:
                tx.execute(sql)
        # Every group exists before the first publish: a message fans out to the groups
        # subscribed when it is published.
        q.subscribe("payment-center", "orders", tags="created", lease=10.0,
                    retry=ferrymq.RetryPolicy.fixed(ms(100, 200, 400, 800, 1600)))
        q.subscribe("production", "payments", tags="paid", lease=10.0,
                    retry=ferrymq.RetryPolicy.fixed(ms(200, 500, 1000, 2000)))
        q.subscribe("logistics", "production", tags="done", lease=10.0)
        q.subscribe("order-service", "logistics", tags="shipped", lease=10.0)


@dataclass
class Service:
    name: str
    argv: list[str]
    env: dict[str, str] = field(default_factory=dict)
    proc: Optional[subprocess.Popen[bytes]] = None

    def start(self, logdir: pathlib.Path) -> None:
        out = open(logdir / f"{self.name}.log", "ab")
        self.proc = subprocess.Popen(
            self.argv, stdin=subprocess.PIPE, stdout=out, stderr=subprocess.STDOUT, cwd=ROOT,
            env={**os.environ, **self.env},
        )

    def kill(self) -> None:
        assert self.proc is not None
        self.proc.kill()  # SIGKILL: no cleanup, no goodbye
        self.proc.wait()

    def stop(self) -> int:
        assert self.proc is not None and self.proc.stdin is not None
        if self.proc.poll() is None:
            try:
                self.proc.stdin.close()  # each service stops when its stdin closes
            except BrokenPipeError:
                pass
            try:
                return self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
                return -9
        return self.proc.returncode

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None


def rows(q: ferrymq.Queue, sql: str, params: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    with q.transaction() as tx:
        return tx.query(sql, params)


def snapshot(q: ferrymq.Queue) -> dict[str, int]:
    (created, completed, charges) = rows(
        q,
        "SELECT (SELECT count(*) FROM orders), (SELECT count(*) FROM orders WHERE status = 'completed'),"
        " (SELECT count(*) FROM bank_charges)",
    )[0]
    stats = q.stats()
    dead = stats.groups["payment-center"].dead
    busy = sum(g.ready + g.scheduled + g.inflight + g.retrying for g in stats.groups.values())
    half = sum(t.half for t in stats.topics.values())
    return {"created": created, "completed": completed, "charges": charges, "dead": dead, "busy": busy, "half": half}


def reconcile(q: ferrymq.Queue, orders: int, crashed: Optional[str]) -> tuple[list[str], list[str]]:
    """(report lines, violations)."""
    report: list[str] = []
    bad: list[str] = []
    book = {r[0]: r for r in rows(q, "SELECT id, amount, status, completed_count FROM orders")}
    charges = dict(rows(q, "SELECT out_trade_no, amount FROM bank_charges"))
    made = [r[0] for r in rows(q, "SELECT order_id FROM production")]
    shipped = [r[0] for r in rows(q, "SELECT order_id FROM shipments")]
    dead = {json.loads(d.payload)["order_id"]: d for d in q.dead_letters("payment-center", limit=1000)}
    completed = [i for i, r in book.items() if r[2] == "completed"]

    if sorted(book) != list(range(1, orders + 1)):
        bad.append(f"orders in the book: {len(book)}, expected 1..{orders}")
    payments = {i: q.find("payments", f"order-{i}") for i in range(1, orders + 1)}
    for i in range(1, orders + 1):
        key = f"order-{i}"
        row = book.get(i)
        paid = [m for m in payments[i] if m.state == "committed"]
        if row is not None and row[2] == "completed":
            if row[3] != 1:
                bad.append(f"{key} completed {row[3]} times")
            if charges.get(key) != row[1]:
                bad.append(f"{key}: charged {charges.get(key)}, order amount {row[1]}")
            if len(paid) != 1:
                bad.append(f"{key}: {len(paid)} payments/paid messages")
            if made.count(i) != 1 or shipped.count(i) != 1:
                bad.append(f"{key}: produced {made.count(i)} times, shipped {shipped.count(i)} times")
            if i in dead:
                bad.append(f"{key} is both completed and dead")
        elif i in dead:
            if key in charges:
                bad.append(f"{key} is dead but the bank charged it")
            if paid:
                bad.append(f"{key} is dead but has a payments/paid message")
        else:
            bad.append(f"{key} is neither completed nor in the dead-letter queue")
    if len(charges) != len(completed):
        bad.append(f"{len(charges)} bank charges for {len(completed)} completed orders")
    undecided = q.half_messages("half")
    if undecided:
        bad.append(f"{len(undecided)} half messages still undecided")

    rolled_back = q.half_messages("rolled_back")
    checked = [m for ms in payments.values() for m in ms if m.checks]
    by_checker = {
        r: sum(1 for m in checked if m.checks[-1].resolution == getattr(ferrymq.Resolution, r.upper()))
        for r in ("commit", "rollback")
    }
    if crashed is not None and not any(m.key == crashed for m in checked):
        bad.append(f"the crash after charging {crashed} left no half message for a checker to resolve")
    report.append(f"orders:              {len(book)} created, {len(completed)} completed exactly once")
    report.append(f"money:               {len(charges)} charges, {sum(charges.values())} in total, no order charged twice"
                  if not any("charged" in b for b in bad) else "money:               MISMATCH")
    report.append(f"payments/paid:       {sum(1 for i in completed)} committed, {len(rolled_back)} rolled back"
                  " (bank refused, or resolved by check-back)")
    report.append(f"check-back:          {len(checked)} half messages a crash left open, resolved by a checker"
                  f" ({by_checker['commit']} committed, {by_checker['rollback']} rolled back)")
    report.append(f"production/shipping: {len(made)} produced, {len(shipped)} shipped")
    report.append(f"dead letters:        {len(dead)}")
    for i, d in sorted(dead.items()):
        report.append(f"  order-{i}: {d.attempts} attempts, last error: {d.last_error}")
    return report, bad


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--db", type=pathlib.Path, default=ROOT / "ferrymq-demo.db")
    parser.add_argument("--orders", type=int, default=40)
    parser.add_argument("--poison", default="13", help="comma-separated ids of orders that cannot be paid")
    parser.add_argument("--fail-rate", default="0.15", help="share of bank calls that fail")
    parser.add_argument("--no-kill", action="store_true", help="do not SIGKILL services mid-run")
    parser.add_argument("--timeout", type=float, default=180.0)
    parser.add_argument("--production", default=os.environ.get("FERRYMQ_PRODUCTION_CMD", ""),
                        help="command line of the production service (default: the Kotlin one)")
    parser.add_argument("--logistics", default=str(ROOT / "target" / "debug" / "logistics"))
    args = parser.parse_args()

    db: pathlib.Path = args.db.resolve()
    logdir = db.parent / f"{db.name}.logs"
    shutil.rmtree(logdir, ignore_errors=True)
    logdir.mkdir(parents=True)
    setup(db)
    production = args.production.split() or [str(HERE / "production-service" / "run.sh")]
    node = shutil.which("node") or "node"
    services = {
        "order-service": Service("order-service", [sys.executable, str(HERE / "order_service.py"), str(db), str(args.orders), args.poison]),
        "payment-center-1": Service("payment-center-1", [node, str(HERE / "payment_center.js"), str(db), args.fail_rate]),
        "payment-center-2": Service("payment-center-2", [node, str(HERE / "payment_center.js"), str(db), args.fail_rate]),
        "production": Service("production", [*production, str(db)]),
        "logistics": Service("logistics", [args.logistics, str(db)]),
    }
    print(f"ferrymq payment pipeline on {db} ({args.orders} orders, poison: {args.poison or 'none'})")
    # Every payment center, restarted ones included, carries the fault: it can fire only
    # once, because after the charge the bank reports the order as charged and nobody
    # charges it again.
    crash = {} if args.no_kill else {"CRASH_AFTER_CHARGE": f"order-{max(1, args.orders // 2)}"}
    for s in services.values():
        if s.name.startswith("payment-center"):
            s.env = crash
        s.start(logdir)
        print(f"  started {s.name:<17} pid {s.proc.pid if s.proc else '?'}: {' '.join(s.argv[:2])}")
    if crash:
        print(f"  the payment center that pays {crash['CRASH_AFTER_CHARGE']} will SIGKILL itself after the bank charge")

    kills: list[str] = []
    restarts: list[str] = []
    started = time.monotonic()
    with ferrymq.Queue(db) as q:
        while True:
            time.sleep(0.1)
            now = snapshot(q)
            if not args.no_kill and not kills and now["created"] >= args.orders // 4:
                # Mid-run: the order service while it creates orders, and a payment center
                # while it pays; both restart, and nothing may be lost or done twice.
                for name in ("order-service", "payment-center-1"):
                    s = services[name]
                    s.kill()
                    kills.append(f"{name} (SIGKILL at {now['created']} orders, {now['charges']} charges)")
                    s.start(logdir)
                print("  killed and restarted: " + "; ".join(kills))
            # The supervisor: a service that died is restarted, as systemd would.
            for s in services.values():
                if not s.alive():
                    code = s.proc.returncode if s.proc else None
                    restarts.append(f"{s.name} (exit {code})")
                    print(f"  {s.name} died (exit status {code}); restarted")
                    s.start(logdir)
            settled = now["completed"] + now["dead"] == args.orders
            if settled and now["busy"] == 0 and now["half"] == 0:
                break
            if time.monotonic() - started > args.timeout:
                print(f"  stopped waiting after {args.timeout} s: {now}")
                break
        elapsed = time.monotonic() - started
        codes = {s.name: s.stop() for s in services.values()}
        report, bad = reconcile(q, args.orders, crash.get("CRASH_AFTER_CHARGE"))
        stats = q.stats()
    report.append(f"processes:           {len(kills)} SIGKILLed by the run, {len(restarts)} restarted after dying")

    print(f"\nReconciliation after {elapsed:.1f} s")
    for line in report:
        print("  " + line)
    print("\nStats")
    for name, g in sorted(stats.groups.items()):
        print(f"  {name:<15} topic {g.topic:<10} ready {g.ready} scheduled {g.scheduled} inflight {g.inflight}"
              f" retrying {g.retrying} dead {g.dead}")
    failed = {n: c for n, c in codes.items() if c != 0}
    if failed:
        bad.append(f"services exited with errors: {failed} (logs in {logdir})")
    if bad:
        print("\nRECONCILIATION FAILED")
        for b in bad:
            print("  - " + b)
        return 1
    print("\nReconciliation holds: every order completed exactly once or dead-lettered with its reason;"
          " no money moved twice.")
    return 0


if __name__ == "__main__":
    sys.exit(main())
