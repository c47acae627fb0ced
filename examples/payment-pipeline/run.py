"""The payment pipeline: five services in four languages, as separate OS processes on one
SQLite file, with a process killed in the middle, ending in a reconciliation report.

    order service (Python)  --orders/created-->  payment center (Node, 2 processes)
      --payments/paid (half message)-->  production (Kotlin)  --production/done-->
      logistics (Rust)  --logistics/shipped-->  order service (completes the order)

With --two-hosts the same services run as two hosts, each with its own file, joined by
the bus: host A (order service, payment centers) relays payments/paid to Kafka, host B's
ingress brings it into B's file, where production and logistics run; B relays
logistics/shipped to RabbitMQ and A's ingress brings it back. Each host's bridge is a
`ferrymq relay --config` process, SIGKILLed twice mid-run.

With --encrypted the file is encrypted: a random passphrase goes into a key file next to
the logs, every service reads its keys from the file named by FERRYMQ_KEY_FILE (one per
line, newest first), and the order service's own connection is sqlcipher3's.

Usage: run.py [--db FILE] [--orders N] [--poison IDS] [--no-kill] [--timeout S]
              [--two-hosts --kafka HOST:PORT --amqp URI] [--encrypted]
Exit status 0 when the reconciliation holds: every order completed exactly once or in the
dead-letter queue with its reason, and no money moved twice.
"""

from __future__ import annotations

import argparse
import json
import os
import pathlib
import secrets
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


def open_queue(db: pathlib.Path) -> ferrymq.Queue:
    """The queue, encrypted when FERRYMQ_KEY_FILE names its key file (--encrypted)."""
    keyfile = os.environ.get("FERRYMQ_KEY_FILE")
    if not keyfile:
        return ferrymq.Queue(db)
    return ferrymq.Queue(db, key=lambda: [k for k in pathlib.Path(keyfile).read_text().splitlines() if k])


def ms(*delays: int) -> list[float]:
    return [d / 1000 for d in delays]


# The consumer groups (group, topic, tags) and who consumes them.
ORDER_SIDE = [("payment-center", "orders", "created"), ("order-service", "logistics", "shipped")]
PRODUCTION_SIDE = [("production", "payments", "paid"), ("logistics", "production", "done")]
# With two hosts, each host's relay takes what the other host consumes.
RELAY_A = ("relay-payments", "payments", "paid")
RELAY_B = ("relay-shipped", "logistics", "shipped")


def setup(db: pathlib.Path, groups: list[tuple[str, str, str]]) -> None:
    for suffix in ("", "-wal", "-shm", "-wake"):
        pathlib.Path(f"{db}{suffix}").unlink(missing_ok=True)
    retry = {
        "payment-center": ferrymq.RetryPolicy.fixed(ms(100, 200, 400, 800, 1600)),
        "production": ferrymq.RetryPolicy.fixed(ms(200, 500, 1000, 2000)),
    }
    with open_queue(db) as q:
        with q.transaction() as tx:
            for sql in SCHEMA:
                tx.execute(sql)
        # Every group exists before the first publish: a message fans out to the groups
        # subscribed when it is published (a relay's group too, before its process runs).
        for group, topic, tags in groups:
            if group in retry:
                q.subscribe(group, topic, tags=tags, lease=10.0, retry=retry[group])
            else:
                q.subscribe(group, topic, tags=tags, lease=10.0)


def relay_config(path: pathlib.Path, db: pathlib.Path, origin: str, egress: tuple[str, str, str],
                 broker_out: str, ingress_topic: str, broker_in: str) -> pathlib.Path:
    """A host's `relay.toml`: its egress relay and its ingress."""
    group, topic, tags = egress
    path.write_text(
        f'db = "{db}"\norigin = "{origin}"\nstats_interval_ms = 0\n\n'
        f'[[egress]]\nname = "{group}"\ngroup = "{group}"\ntopic = "{topic}"\ntags = "{tags}"\n'
        f"lease_ms = 10000\nretry_initial_ms = 100\nretry_max_ms = 2000\n{broker_out}\n\n"
        f'[[ingress]]\nname = "{ingress_topic}-in"\ntopic = "{ingress_topic}"\n{broker_in}\n'
    )
    return path


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
            if self.argv[1:2] == ["relay"]:
                self.proc.terminate()  # a relay stops gracefully on SIGTERM
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


def snapshot(q: ferrymq.Queue, other: Optional[ferrymq.Queue]) -> dict[str, int]:
    """The order side's progress; `other` is host B's file when there are two hosts."""
    (created, completed, charges) = rows(
        q,
        "SELECT (SELECT count(*) FROM orders), (SELECT count(*) FROM orders WHERE status = 'completed'),"
        " (SELECT count(*) FROM bank_charges)",
    )[0]
    stats = q.stats()
    dead = stats.groups["payment-center"].dead
    everything = [stats] + ([other.stats()] if other is not None else [])
    busy = sum(g.ready + g.scheduled + g.inflight + g.retrying for s in everything for g in s.groups.values())
    half = sum(t.half for t in stats.topics.values())
    return {"created": created, "completed": completed, "charges": charges, "dead": dead, "busy": busy, "half": half}


def reconcile(q: ferrymq.Queue, orders: int, crashed: Optional[str],
              host_b: Optional[ferrymq.Queue] = None) -> tuple[list[str], list[str]]:
    """(report lines, violations). With two hosts, production and shipping are host B's."""
    report: list[str] = []
    bad: list[str] = []
    plant = host_b or q
    book = {r[0]: r for r in rows(q, "SELECT id, amount, status, completed_count FROM orders")}
    charges = dict(rows(q, "SELECT out_trade_no, amount FROM bank_charges"))
    made = [r[0] for r in rows(plant, "SELECT order_id FROM production")]
    shipped = [r[0] for r in rows(plant, "SELECT order_id FROM shipments")]
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
            if host_b is not None:
                # Across the bus: each message arrived in the other file exactly once.
                arrived = len(host_b.find("payments", key))
                returned = len(q.find("logistics", key))
                if arrived != 1 or returned != 1:
                    bad.append(f"{key}: payments/paid arrived on host B {arrived} times,"
                               f" logistics/shipped on host A {returned} times")
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
    report.append(f"production/shipping: {len(made)} produced, {len(shipped)} shipped"
                  + (" (on host B, each message across the bus once)" if host_b is not None else ""))
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
    parser.add_argument("--two-hosts", action="store_true",
                        help="two files joined by Kafka and RabbitMQ through `ferrymq relay` processes")
    parser.add_argument("--kafka", default=os.environ.get("FERRYMQ_TEST_KAFKA", "127.0.0.1:19092"))
    parser.add_argument("--amqp", default=os.environ.get("FERRYMQ_TEST_AMQP", "amqp://guest:guest@127.0.0.1:5682/%2f"))
    parser.add_argument("--ferrymq", default=str(ROOT / "target" / "debug" / "ferrymq"),
                        help="the ferrymq command the relays run (built with its relay feature)")
    parser.add_argument("--encrypted", action="store_true",
                        help="an encrypted file, its passphrase in a key file every service reads")
    args = parser.parse_args()
    if args.encrypted and args.two_hosts:
        parser.error("--encrypted runs on one host (the relay's config has no key yet)")

    db: pathlib.Path = args.db.resolve()
    db_b = db.with_name(f"{db.stem}-host-b{db.suffix}")
    logdir = db.parent / f"{db.name}.logs"
    shutil.rmtree(logdir, ignore_errors=True)
    logdir.mkdir(parents=True)
    if args.encrypted:
        keyfile = logdir / "key"
        keyfile.write_text(secrets.token_hex(16) + "\n")
        keyfile.chmod(0o600)
        os.environ["FERRYMQ_KEY_FILE"] = str(keyfile)  # for the services, started below
    plant_db = db_b if args.two_hosts else db
    if args.two_hosts:
        setup(db, ORDER_SIDE + [RELAY_A])
        setup(db_b, PRODUCTION_SIDE + [RELAY_B])
    else:
        setup(db, ORDER_SIDE + PRODUCTION_SIDE)
    production = args.production.split() or [str(HERE / "production-service" / "run.sh")]
    node = shutil.which("node") or "node"
    services = {
        "order-service": Service("order-service", [sys.executable, str(HERE / "order_service.py"), str(db), str(args.orders), args.poison]),
        "payment-center-1": Service("payment-center-1", [node, str(HERE / "payment_center.js"), str(db), args.fail_rate]),
        "payment-center-2": Service("payment-center-2", [node, str(HERE / "payment_center.js"), str(db), args.fail_rate]),
        "production": Service("production", [*production, str(plant_db)]),
        "logistics": Service("logistics", [args.logistics, str(plant_db)]),
    }
    bridges: list[str] = []
    if args.two_hosts:
        # A run's own Kafka topic, consumer group and RabbitMQ queue: a broker that served
        # an earlier run holds its messages, which this run's files know nothing of.
        run_id = f"{os.getpid()}-{int(time.time())}"
        kafka_topic, amqp_queue = f"payments-{run_id}", f"logistics-{run_id}"
        kafka_out = f'kafka = {{ brokers = "{args.kafka}", topic = "{kafka_topic}" }}'
        kafka_in = f'kafka = {{ brokers = "{args.kafka}", topic = "{kafka_topic}", group = "host-b-{run_id}" }}'
        amqp_out = f'amqp = {{ uri = "{args.amqp}", routing_key = "{amqp_queue}", declare_queue = "{amqp_queue}" }}'
        amqp_in = f'amqp = {{ uri = "{args.amqp}", queue = "{amqp_queue}" }}'
        a = relay_config(logdir / "host-a.toml", db, "host-a", RELAY_A, kafka_out, "logistics", amqp_in)
        b = relay_config(logdir / "host-b.toml", db_b, "host-b", RELAY_B, amqp_out, "payments", kafka_in)
        services["relay-host-a"] = Service("relay-host-a", [args.ferrymq, "relay", "--config", str(a)])
        services["relay-host-b"] = Service("relay-host-b", [args.ferrymq, "relay", "--config", str(b)])
        bridges = ["relay-host-a", "relay-host-b"]
    print(f"ferrymq payment pipeline on {db}" + (f" and {db_b}" if args.two_hosts else "")
          + (" (encrypted)" if args.encrypted else "")
          + f" ({args.orders} orders, poison: {args.poison or 'none'})")
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
    host_b = open_queue(db_b) if args.two_hosts else None
    bridge_kills = 0
    with open_queue(db) as q:
        while True:
            time.sleep(0.1)
            now = snapshot(q, host_b)
            if not args.no_kill and not kills and now["created"] >= args.orders // 4:
                # Mid-run: the order service while it creates orders, and a payment center
                # while it pays (and each host's relay); all restart, and nothing may be
                # lost or done twice.
                for name in ("order-service", "payment-center-1", *bridges):
                    s = services[name]
                    s.kill()
                    kills.append(f"{name} (SIGKILL at {now['created']} orders, {now['charges']} charges)")
                    s.start(logdir)
                print("  killed and restarted: " + "; ".join(kills))
            if not args.no_kill and bridges and bridge_kills == 0 and now["completed"] >= args.orders // 2:
                # The relays again, while messages cross the bus both ways.
                for name in bridges:
                    services[name].kill()
                    kills.append(f"{name} (SIGKILL at {now['completed']} completed)")
                    services[name].start(logdir)
                bridge_kills += 1
                print(f"  killed and restarted the relays at {now['completed']} completed orders")
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
        report, bad = reconcile(q, args.orders, crash.get("CRASH_AFTER_CHARGE"), host_b)
        stats = q.stats()
        if host_b is not None:
            stats_b = host_b.stats()
            host_b.close()
    report.append(f"processes:           {len(kills)} SIGKILLed by the run, {len(restarts)} restarted after dying")

    print(f"\nReconciliation after {elapsed:.1f} s")
    for line in report:
        print("  " + line)
    hosts = [("", stats)] if not args.two_hosts else [("host A ", stats), ("host B ", stats_b)]
    for label, st in hosts:
        print(f"\n{label}Stats")
        for name, g in sorted(st.groups.items()):
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
