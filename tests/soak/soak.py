"""The soak: producers and consumers in Python and Node on one file for a fixed time,
with retention running, sampling what must stay flat.

    python tests/soak/soak.py --secs 60 --out target/soak

2 Python and 2 Node producers publish `--rate` messages a second in total (paced); 2
Python and 2 Node consumers in one group receive and ack them; this driver purges acked
messages older than 10 s every 5 s (retention) on its own handle. Every sample interval
it records the file's and the `-wal`'s size, the RSS of each worker, throughput, and the
p50/p99 publish-to-receive latency of the interval, into `<out>/soak.csv`, and at the
end draws `<out>/soak.svg`.

It fails when a message is lost or delivered twice (published == acked, each once), or
when the file, the `-wal` or a worker's RSS grows in the second half of the run beyond
the first half's peak by more than the stated slack (after a warm-up of a fifth of the
run). Latency is recorded, not asserted (timing on a shared machine is noise)."""

import argparse
import csv
import json
import os
import signal
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import ferrymq

HERE = Path(__file__).resolve().parent


class Worker:
    def __init__(self, cmd: list[str], lang: str, role: str) -> None:
        self.lang, self.role = lang, role
        self.proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, text=True)
        self.lock = threading.Lock()
        self.latencies: list[float] = []
        self.count = 0
        self.final: dict = {}
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        assert self.proc.stdout
        for line in self.proc.stdout:
            msg = json.loads(line)
            with self.lock:
                if msg.get("final"):
                    self.final = msg
                else:
                    self.latencies.extend(msg["latencies_ms"])
                    self.count += msg["n"]

    def take(self) -> tuple[int, list[float]]:
        with self.lock:
            n, lat = self.count, self.latencies
            self.count, self.latencies = 0, []
        return n, lat

    def rss_kib(self) -> int:
        try:
            for line in Path(f"/proc/{self.proc.pid}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
        except FileNotFoundError:
            pass
        return 0

    def stop(self) -> dict:
        self.proc.send_signal(signal.SIGTERM)
        self.proc.wait(timeout=60)
        deadline = time.monotonic() + 5
        while not self.final and time.monotonic() < deadline:
            time.sleep(0.05)
        if self.proc.returncode != 0 or not self.final:
            sys.exit(f"{self.lang} {self.role} ended with {self.proc.returncode}, no totals")
        return self.final


def pct(values: list[float], p: float) -> float:
    if not values:
        return 0.0
    s = sorted(values)
    return s[min(len(s) - 1, int(p * len(s)))]


def size(path: Path) -> int:
    try:
        return path.stat().st_size
    except FileNotFoundError:
        return 0


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--secs", type=float, default=float(os.environ.get("FERRYMQ_SOAK_SECS", 60)))
    ap.add_argument("--rate", type=float, default=1000.0, help="messages a second, in total")
    ap.add_argument("--out", type=Path, default=Path("target/soak"))
    ap.add_argument("--node", default="node")
    args = ap.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    tmp = tempfile.TemporaryDirectory()
    db = Path(tmp.name) / "soak.db"
    wal = Path(str(db) + "-wal")
    q = ferrymq.Queue(str(db))
    q.subscribe("soak", "soak", lease=30.0)

    py = [sys.executable, str(HERE / "worker.py")]
    js = [args.node, str(HERE / "worker.js")]
    each = str(args.rate / 4)
    consumers = [Worker(py + ["consume", str(db)], "python", "consumer") for _ in range(2)]
    consumers += [Worker(js + ["consume", str(db)], "node", "consumer") for _ in range(2)]
    producers = [Worker(py + ["produce", str(db), each], "python", "producer") for _ in range(2)]
    producers += [Worker(js + ["produce", str(db), each], "node", "producer") for _ in range(2)]
    workers = consumers + producers

    interval = max(1.0, args.secs / 120)
    rows = []
    start = time.monotonic()
    next_purge = start + 5
    next_sample = start + interval
    purged = 0
    while time.monotonic() - start < args.secs:
        now = time.monotonic()
        for w in workers:
            if w.proc.poll() is not None:
                sys.exit(f"{w.lang} {w.role} died with {w.proc.returncode}")
        if now >= next_purge:
            purged += q.purge_acked(10.0)
            next_purge += 5
        if now >= next_sample:
            acked, lat = 0, []
            for c in consumers:
                n, l = c.take()
                acked += n
                lat += l
            rss = {w.lang + " " + w.role: 0 for w in workers}
            for w in workers:
                rss[w.lang + " " + w.role] = max(rss[w.lang + " " + w.role], w.rss_kib())
            rows.append({
                "t_s": round(now - start, 1),
                "acked_per_s": round(acked / interval),
                "p50_ms": round(pct(lat, 0.50), 2),
                "p99_ms": round(pct(lat, 0.99), 2),
                "db_kib": size(db) // 1024,
                "wal_kib": size(wal) // 1024,
                **{f"rss_kib {k}": v for k, v in rss.items()},
            })
            next_sample += interval
        time.sleep(0.05)

    published = sum(p.stop()["published"] for p in producers)
    # Let the consumers drain what is left, then stop them.
    deadline = time.monotonic() + 60
    while q.stats().groups["soak"].ready + q.stats().groups["soak"].inflight and time.monotonic() < deadline:
        time.sleep(0.2)
    acked = sum(c.stop()["acked"] for c in consumers)
    stats = q.stats().groups["soak"]
    q.close()

    with open(args.out / "soak.csv", "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=list(rows[0]))
        w.writeheader()
        w.writerows(rows)
    draw(rows, args.out / "soak.svg", args)

    summary = {
        "secs": args.secs, "rate": args.rate, "published": published, "acked": acked,
        "purged": purged, "dead": stats.dead, "ready_left": stats.ready,
        "p99_ms_median_of_samples": pct([r["p99_ms"] for r in rows], 0.5),
        "p50_ms_median_of_samples": pct([r["p50_ms"] for r in rows], 0.5),
        "db_kib_max": max(r["db_kib"] for r in rows),
        "wal_kib_max": max(r["wal_kib"] for r in rows),
    }
    print(json.dumps(summary, indent=1))
    problems = []
    if acked != published or stats.dead or stats.ready or stats.inflight:
        problems.append(f"published {published}, acked {acked}, left {stats}")
    problems += flatness(rows)
    if problems:
        sys.exit("soak failed:\n  " + "\n  ".join(problems))


# Growth allowed in the second half over the first half's peak (after the warm-up):
# SQLite reuses freed pages, so the file settles once retention has run a few times;
# RSS settles once caches and allocators have warmed.
SLACK = {"db_kib": (1.25, 1024), "wal_kib": (1.25, 4096), "rss_kib": (1.25, 16 * 1024)}


def flatness(rows: list[dict]) -> list[str]:
    warm = rows[len(rows) // 5:]
    first, second = warm[: len(warm) // 2], warm[len(warm) // 2:]
    problems = []
    for col in rows[0]:
        kind = next((k for k in SLACK if col.startswith(k)), None)
        if kind is None or not first or not second:
            continue
        factor, extra = SLACK[kind]
        peak1 = max(r[col] for r in first)
        peak2 = max(r[col] for r in second)
        if peak2 > peak1 * factor + extra:
            problems.append(f"{col} grew: first half peak {peak1}, second half peak {peak2}")
    return problems


def draw(rows: list[dict], path: Path, args: argparse.Namespace) -> None:
    """Three stacked panels in plain SVG: sizes (MiB), RSS (MiB), latency (ms)."""
    width, panel_h, left, top = 760, 170, 60, 30
    t_max = max(r["t_s"] for r in rows) or 1
    panels = [
        ("file and -wal size (MiB)", [("db_kib", "#1f77b4", "file"), ("wal_kib", "#ff7f0e", "-wal")], 1 / 1024),
        ("worker RSS (MiB)", [(k, c, k.split(" ", 1)[1]) for k, c in zip(
            [k for k in rows[0] if k.startswith("rss_kib")], ["#2ca02c", "#d62728", "#9467bd", "#8c564b"])], 1 / 1024),
        ("publish-to-receive latency (ms)", [("p50_ms", "#17becf", "p50"), ("p99_ms", "#e377c2", "p99")], 1.0),
    ]
    out = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{top + len(panels) * (panel_h + 40)}" font-family="sans-serif" font-size="11">',
           f'<text x="{left}" y="18" font-size="13">ferrymq soak: {args.rate:.0f} msg/s, 2+2 producers and 2+2 consumers (Python, Node), retention every 5 s, {t_max:.0f} s</text>']
    for i, (title, series, scale) in enumerate(panels):
        y0 = top + i * (panel_h + 40) + 15
        y_max = max(max(r[c] * scale for r in rows) for c, _, _ in series) or 1
        y_max *= 1.15
        out.append(f'<text x="{left}" y="{y0 - 4}">{title}</text>')
        out.append(f'<rect x="{left}" y="{y0}" width="{width - left - 20}" height="{panel_h}" fill="none" stroke="#999"/>')
        for frac in (0, 0.5, 1):
            yy = y0 + panel_h - frac * panel_h
            out.append(f'<text x="{left - 6}" y="{yy + 4:.1f}" text-anchor="end">{y_max * frac:.1f}</text>')
        for frac in (0, 0.25, 0.5, 0.75, 1):
            xx = left + frac * (width - left - 20)
            out.append(f'<text x="{xx:.1f}" y="{y0 + panel_h + 13}" text-anchor="middle">{t_max * frac:.0f} s</text>')
        for j, (col, colour, label) in enumerate(series):
            pts = " ".join(
                f"{left + r['t_s'] / t_max * (width - left - 20):.1f},{y0 + panel_h - r[col] * scale / y_max * panel_h:.1f}"
                for r in rows)
            out.append(f'<polyline fill="none" stroke="{colour}" stroke-width="1.5" points="{pts}"/>')
            out.append(f'<text x="{left + 8 + j * 150}" y="{y0 + 14}" fill="{colour}">{label}</text>')
    out.append("</svg>")
    path.write_text("\n".join(out))


if __name__ == "__main__":
    main()
