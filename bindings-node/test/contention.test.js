'use strict'
// Contention across languages: Node, Python and Rust processes mix publishes, outbox
// transactions and receive+ack on one file; no BUSY error reaches a caller, and every
// published message is acked exactly once (docs/reliability.md).
const test = require('node:test')
const assert = require('node:assert/strict')
const fs = require('node:fs')
const path = require('node:path')
const { Queue } = require('ferrymq')
const { tempDb, run } = require('./helpers.js')

const SECS = Number(process.env.FERRYMQ_CONTENTION_SECS ?? '3')
const RUST_BIN = process.env.FERRYMQ_RUST_BIN ?? path.join(__dirname, '..', '..', 'target', 'debug')

const NODE_HAMMER = `
  const { Queue, FerrymqError } = require('ferrymq')
  const [db, me, secs] = process.argv.slice(1)
  const q = new Queue(db)
  ;(async () => {
    let busy = 0, n = 0
    const out = []
    const end = Date.now() + Number(secs) * 1000
    while (Date.now() < end) {
      n++
      try {
        if ((Number(me) + n) % 4 === 0) out.push('PUB ' + q.publish('t', 'node-' + me + '-' + n))
        else if ((Number(me) + n) % 4 === 1) {
          out.push('PUB ' + q.transaction((tx) => {
            tx.execute('INSERT INTO ledger(who) VALUES (?)', ['node-' + me])
            return tx.publish('t', 'tx')
          }))
        } else {
          for (const d of await q.receive('g', { max: 8 })) {
            d.ack()
            out.push('ACK ' + d.messageId)
          }
        }
      } catch (e) {
        if (e instanceof FerrymqError && e.code === 'BUSY') busy++
        else throw e
      }
    }
    out.push('BUSY ' + busy)
    console.log(out.join('\\n'))
    await q.close()
  })()`

const PYTHON_HAMMER = `
import sys, time, ferrymq
db, me, secs = sys.argv[1], int(sys.argv[2]), float(sys.argv[3])
q = ferrymq.Queue(db)
busy, n, out = 0, 0, []
end = time.monotonic() + secs
while time.monotonic() < end:
    n += 1
    try:
        if (me + n) % 4 == 0:
            out.append(f"PUB {q.publish('t', f'py-{me}-{n}')}")
        elif (me + n) % 4 == 1:
            with q.transaction() as tx:
                tx.execute("INSERT INTO ledger(who) VALUES (?)", (f"py-{me}",))
                out.append(f"PUB {tx.publish('t', 'tx')}")
        else:
            for d in q.receive("g", max=8):
                d.ack()
                out.append(f"ACK {d.message_id}")
    except ferrymq.BusyError:
        busy += 1
out.append(f"BUSY {busy}")
print("\\n".join(out))
`

test('3 Node, 3 Python and 2 Rust processes on one file: no BUSY, every message acked once', async (t) => {
  const python = process.env.FERRYMQ_PYTHON
  assert.ok(python, 'FERRYMQ_PYTHON must name a Python with the ferrymq wheel installed (make test sets it)')
  const hammer = path.join(RUST_BIN, 'hammer')
  assert.ok(fs.existsSync(hammer), `${hammer} is missing: cargo build -p ferrymq-examples --bins`)
  const db = tempDb()
  const q = new Queue(db)
  q.subscribe('g', 't')
  q.transaction((tx) => tx.execute('CREATE TABLE ledger(who TEXT)'))
  const runs = [
    ...[0, 1, 2].map((me) => run(NODE_HAMMER, [db, String(me), String(SECS)]).done),
    ...[3, 4, 5].map((me) => run(PYTHON_HAMMER, [db, String(me), String(SECS)], { command: python }).done),
    ...[6, 7].map((me) => run(null, [db, String(me), String(SECS)], { command: hammer }).done),
  ]
  const outs = await Promise.all(runs)
  /** @type {number[]} */
  const published = []
  /** @type {Map<number, number>} */
  const acked = new Map()
  let busy = 0
  for (const o of outs) {
    assert.equal(o.code, 0, o.stderr)
    for (const line of o.stdout.split('\n')) {
      const [kind, value] = line.split(' ')
      if (kind === 'PUB') published.push(Number(value))
      else if (kind === 'ACK') acked.set(Number(value), (acked.get(Number(value)) ?? 0) + 1)
      else if (kind === 'BUSY') busy += Number(value)
    }
  }
  for (;;) {
    const ds = await q.receive('g', { max: 500 })
    if (ds.length === 0) break
    for (const d of ds) {
      d.ack()
      acked.set(d.messageId, (acked.get(d.messageId) ?? 0) + 1)
    }
  }
  assert.equal(busy, 0, 'a BUSY error reached a caller')
  assert.ok(published.length > 300, `only ${published.length} publishes`)
  assert.equal(new Set(published).size, published.length)
  assert.deepEqual([...acked.keys()].sort((a, b) => a - b), [...published].sort((a, b) => a - b))
  assert.ok([...acked.values()].every((n) => n === 1), 'a message was acked twice')
  const ledger = q.transaction((tx) => tx.query("SELECT substr(who, 1, instr(who, '-') - 1), count(*) FROM ledger GROUP BY 1 ORDER BY 1"))
  assert.deepEqual(ledger.map((r) => r[0]), ['node', 'py', 'rust'], 'every language wrote through transactions')
  t.diagnostic(`${outs.length} processes, ${SECS} s: ${published.length} published, ${acked.size} acked once, ${busy} busy`)
  await q.close()
})
