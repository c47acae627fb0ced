'use strict'
// better-sqlite3 and ferrymq in one process, on one file: the test opens, uses and closes
// better-sqlite3 connections thousands of times (publishing with publishIn) while ferrymq
// consumers in this process and in two others receive and ack. Closing a better-sqlite3
// connection closes descriptors of the file, which used to drop ferrymq's locks.
const test = require('node:test')
const assert = require('node:assert/strict')
const Database = require('better-sqlite3')
const { Queue, publishIn, ackIn, FerrymqError } = require('ferrymq')
const { tempDb, run } = require('./helpers.js')

const ROUNDS = Number(process.env.FERRYMQ_HAZARD_ROUNDS ?? 10000)

const CONSUMER = `
  const { Queue, FerrymqError } = require('ferrymq')
  const [db, total] = process.argv.slice(1)
  const q = new Queue(db)
  console.log('READY')
  ;(async () => {
    for (;;) {
      for (const d of await q.receive('g', { max: 8, waitMs: 200 })) {
        try {
          d.ack()
          console.log(d.key)
        } catch (e) {
          if (!(e instanceof FerrymqError && e.code === 'LEASE_LOST')) throw e
        }
      }
      const s = q.stats()
      const g = s.groups.g
      if (s.topics.t && s.topics.t.messages === Number(total) &&
          g.ready + g.inflight + g.scheduled + g.retrying === 0) break
    }
    await q.close()
  })()`

test('better-sqlite3 connections opened and closed beside ferrymq lose nothing', { timeout: 600_000 }, async () => {
  const db = tempDb()
  const setup = new Queue(db)
  setup.subscribe('g', 't', { leaseMs: 30_000 })
  await setup.close()
  const first = new Database(db)
  first.exec('CREATE TABLE orders (id INTEGER PRIMARY KEY)')
  first.close()
  let ready = 0
  const others = [0, 1].map(() =>
    run(CONSUMER, [db, String(ROUNDS)], { onLine: (l) => { if (l === 'READY') ready++ } }),
  )
  while (ready < 2) await new Promise((r) => setTimeout(r, 10))

  const q = new Queue(db)
  /** @type {string[]} */
  const ackedHere = []
  let stop = false
  // One consumer acks through ferrymq, the other with ackIn on a fresh better-sqlite3
  // connection each time (more opens and closes of the file).
  const consume = async (/** @type {boolean} */ withOwnConnection) => {
    while (!stop) {
      for (const d of await q.receive('g', { max: 8, waitMs: 100 })) {
        try {
          if (withOwnConnection) {
            const own = new Database(db, { timeout: 10_000 })
            own.transaction(() => ackIn(own, d)).immediate()
            own.close()
          } else {
            d.ack()
          }
          ackedHere.push(d.key ?? '')
        } catch (e) {
          if (!(e instanceof FerrymqError && e.code === 'LEASE_LOST')) throw e
        }
      }
    }
  }
  const consumers = [consume(false), consume(true)]

  for (let i = 0; i < ROUNDS; i++) {
    const own = new Database(db, { timeout: 10_000 })
    // BEGIN IMMEDIATE: a deferred transaction that reads first cannot wait for the write
    // lock once another connection has committed (SQLITE_BUSY at once).
    own.transaction(() => {
      own.prepare('INSERT INTO orders (id) VALUES (?)').run(i)
      publishIn(own, 't', 'x', { key: `order-${i}` })
    }).immediate()
    own.close()
    // Lets the in-process consumers' settled receives run.
    if (i % 20 === 0) await new Promise((r) => setImmediate(r))
  }

  const outs = await Promise.all(others.map((o) => o.done))
  for (const o of outs) assert.equal(o.code, 0, o.stderr)
  stop = true
  await Promise.all(consumers)

  const acked = [...ackedHere, ...outs.flatMap((o) => o.stdout.split('\n').filter((l) => l && l !== 'READY'))]
  /** @type {Map<string, number>} */
  const counts = new Map()
  for (const k of acked) counts.set(k, (counts.get(k) ?? 0) + 1)
  const lost = []
  for (let i = 0; i < ROUNDS; i++) if (!counts.has(`order-${i}`)) lost.push(i)
  assert.deepEqual(lost, [], 'lost')
  assert.deepEqual([...counts].filter(([, n]) => n > 1), [], 'acked twice')
  assert.equal(counts.size, ROUNDS)
  await q.close()
  const check = new Database(db)
  assert.equal(check.pragma('integrity_check', { simple: true }), 'ok')
  const row = /** @type {{ n: number }} */ (check.prepare('SELECT count(*) AS n FROM orders').get())
  assert.equal(row.n, ROUNDS)
  check.close()
})
