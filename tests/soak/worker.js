// A soak worker in Node: `produce <db> <rate>` or `consume <db>`, the same protocol as
// worker.py (one JSON line a second from a consumer, a final line with totals on SIGTERM).
'use strict'
const { Queue } = require(process.env.FERRYMQ_NODE_PACKAGE || '../../bindings-node')

const TOPIC = 'soak'
const GROUP = 'soak'
let stop = false
process.on('SIGTERM', () => { stop = true })

// Wall-clock milliseconds with sub-millisecond precision (Date.now() has whole ms).
const wallMs = () => performance.timeOrigin + performance.now()
const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms))

async function produce (q, rate) {
  const pad = 'x'.repeat(200)
  let sent = 0
  const start = performance.now()
  while (!stop) {
    const due = start + (sent * 1000) / rate
    const now = performance.now()
    if (due > now) {
      await sleep(due - now)
      continue
    }
    q.publish(TOPIC, JSON.stringify({ t: Math.round(wallMs() * 1e6), pad }))
    sent++
  }
  console.log(JSON.stringify({ final: true, published: sent }))
}

async function consume (q) {
  let total = 0
  let window = []
  let nextReport = performance.now() + 1000
  while (!stop) {
    for (const d of await q.receive(GROUP, { max: 50, waitMs: 200 })) {
      const t = JSON.parse(d.payload.toString()).t
      window.push(wallMs() - t / 1e6)
      d.ack()
      total++
    }
    if (performance.now() >= nextReport) {
      console.log(JSON.stringify({ n: window.length, latencies_ms: window }))
      window = []
      nextReport += 1000
    }
  }
  console.log(JSON.stringify({ final: true, acked: total }))
}

async function main () {
  const [role, db, rate] = process.argv.slice(2)
  const q = new Queue(db)
  if (role === 'produce') await produce(q, Number(rate))
  else await consume(q)
  await q.close()
}

main().catch((e) => { console.error(e); process.exit(1) })
