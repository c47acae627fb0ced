'use strict'
// Real OS processes on one file: Node with Node, and Node consuming what Python published.
const test = require('node:test')
const assert = require('node:assert/strict')
const { Queue } = require('ferrymq')
const { tempDb, run } = require('./helpers.js')

const PER_PROCESS = 300

// Publishes PER_PROCESS messages while consuming, and stops once every message of both
// processes is acked; prints what it acked.
const PRODUCER_CONSUMER = `
  const { Queue } = require('ferrymq')
  const [db, me, total] = process.argv.slice(1)
  const q = new Queue(db)
  ;(async () => {
    let sent = 0
    const acked = []
    for (;;) {
      if (sent < ${PER_PROCESS}) q.publish('t', me + '-' + sent++)
      const ds = await q.receive('g', { max: 5, waitMs: sent < ${PER_PROCESS} ? 0 : 200 })
      for (const d of ds) {
        d.ack()
        acked.push(d.payload.toString())
      }
      const s = q.stats()
      const g = s.groups.g
      if (ds.length === 0 && sent === ${PER_PROCESS} && s.topics.t.messages === Number(total) &&
          g.ready + g.inflight + g.scheduled + g.retrying === 0) break
    }
    console.log(acked.join(' '))
    await q.close()
  })()`

test('two Node processes publish and consume on one file: every message acked once', async () => {
  const db = tempDb()
  const q = new Queue(db)
  q.subscribe('g', 't')
  await q.close()
  const runs = ['a', 'b'].map((me) => run(PRODUCER_CONSUMER, [db, me, String(2 * PER_PROCESS)]).done)
  const outs = await Promise.all(runs)
  for (const o of outs) assert.equal(o.code, 0, o.stderr)
  const acked = outs.flatMap((o) => o.stdout.trim().split(' ').filter(Boolean))
  const expected = ['a', 'b'].flatMap((me) => Array.from({ length: PER_PROCESS }, (_, i) => `${me}-${i}`))
  assert.equal(acked.length, expected.length, 'no message acked twice')
  assert.deepEqual([...acked].sort(), [...expected].sort())
  assert.ok(outs.every((o) => o.stdout.includes('-')), 'both processes consumed')
})

const PYTHON_PRODUCER = `
import sys, ferrymq
with ferrymq.Queue(sys.argv[1]) as q:
    for i in range(25):
        q.publish("orders", f"order-{i}".encode(), tag="created", key=f"order-{i}",
                  headers={"traceparent": f"00-{i:032x}-{i:016x}-01"})
print("published", flush=True)
`

test('a Node consumer of messages a Python producer published', async () => {
  const python = process.env.FERRYMQ_PYTHON
  assert.ok(python, 'FERRYMQ_PYTHON must name a Python with the ferrymq wheel installed (make test sets it)')
  const db = tempDb()
  const q = new Queue(db)
  q.subscribe('payment-center', 'orders', { tags: 'created' })
  const producer = run(PYTHON_PRODUCER, [db], { command: python })
  /** @type {import('ferrymq').Delivery[]} */
  const got = []
  for await (const d of q.consume('payment-center', { max: 10, waitMs: 200 })) {
    got.push(d)
    d.ack()
    if (got.length === 25) break
  }
  const out = await producer.done
  assert.equal(out.code, 0, out.stderr)
  assert.deepEqual(got.map((d) => d.payload.toString()), Array.from({ length: 25 }, (_, i) => `order-${i}`))
  assert.deepEqual(got.map((d) => d.key), Array.from({ length: 25 }, (_, i) => `order-${i}`))
  assert.equal(got[3].tag, 'created')
  assert.equal(got[3].headers.traceparent, `00-${(3).toString(16).padStart(32, '0')}-${(3).toString(16).padStart(16, '0')}-01`)
  await q.close()
})
