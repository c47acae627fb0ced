'use strict'
// publishIn / ackIn on the caller's own connection (better-sqlite3; node:sqlite where this
// Node has it): the message and the ack commit and roll back with the caller's rows, keep
// publish's checks and error codes, and another process in another language receives
// exactly what was committed.
const test = require('node:test')
const assert = require('node:assert/strict')
const Database = require('better-sqlite3')
const { Queue, FerrymqError, publishIn, ackIn } = require('ferrymq')
const { tempDb, clockedQueue, run, START_MS } = require('./helpers.js')

/**
 * A queue file with group `g` on topic `orders`, the caller's connection on it and its
 * business table.
 * @param {import('ferrymq').QueueOptions} [options]
 */
function setup(options = {}) {
  const { q, clock, db: file } = clockedQueue(options)
  q.subscribe('g', 'orders', { leaseMs: 1000 })
  const db = new Database(file)
  db.exec('CREATE TABLE orders (id INTEGER PRIMARY KEY, amount INTEGER)')
  return { q, clock, file, db }
}

/** @param {import('better-sqlite3').Database} db */
function amounts(db) {
  return db.prepare('SELECT id, amount FROM orders ORDER BY id').raw().all()
}

/** @param {Queue} q */
function messageCount(q) {
  return q.stats().topics.orders?.messages ?? 0
}

/**
 * Runs `f`, which must throw a FerrymqError; returns it.
 * @param {() => unknown} f
 * @returns {FerrymqError}
 */
function failure(f) {
  try {
    f()
  } catch (e) {
    assert.ok(e instanceof FerrymqError, `expected a FerrymqError, got ${e}`)
    return e
  }
  assert.fail('expected an error')
}

test('publishIn commits the message with the caller’s row', async () => {
  const { q, db } = setup()
  const id = db.transaction(() => {
    db.prepare('INSERT INTO orders VALUES (?, ?)').run(1, 100)
    return publishIn(db, 'orders', 'order 1', {
      tag: 'paid',
      key: 'order-1',
      headers: { trace: 't1' },
      queue: q,
    })
  })()
  assert.equal(typeof id, 'number')
  assert.deepEqual(amounts(db), [[1, 100]])
  const m = q.message(id)
  assert.equal(m.state, 'committed')
  assert.equal(m.payload.toString(), 'order 1')
  assert.equal(m.tag, 'paid')
  assert.equal(m.key, 'order-1')
  assert.deepEqual(m.headers, { trace: 't1' })
  assert.equal(m.publishedAt.getTime(), START_MS, "the queue's clock")
  const [d] = await q.receive('g')
  assert.equal(d.messageId, id)
  assert.equal(d.payload.toString(), 'order 1')
  await q.close()
  db.close()
})

test('a throw inside db.transaction rolls back the caller’s row and the message', async () => {
  const { q, db } = setup()
  const boom = new Error('the service failed after publishing')
  assert.throws(
    () =>
      db.transaction(() => {
        db.prepare('INSERT INTO orders VALUES (?, ?)').run(1, 100)
        publishIn(db, 'orders', 'order 1', { key: 'order-1' })
        throw boom
      })(),
    (e) => e === boom,
  )
  assert.deepEqual(amounts(db), [])
  assert.equal(messageCount(q), 0)
  assert.deepEqual(q.find('orders', 'order-1'), [])
  assert.deepEqual(await q.receive('g'), [])
  await q.close()
  db.close()
})

test('a repeated idempotencyKey returns the first id and adds nothing', async () => {
  const { q, db } = setup()
  const first = db.transaction(() => publishIn(db, 'orders', 'pay 7', { idempotencyKey: 'order-7/pay' }))()
  const again = db.transaction(() => publishIn(db, 'orders', 'pay 7 again', { idempotencyKey: 'order-7/pay' }))()
  assert.equal(again, first)
  assert.equal(messageCount(q), 1)
  // ... also against a message Queue#publish wrote (on the queue's clock, so the window is
  // measured on it), and on a connection returning BigInts
  const byQueue = q.publish('orders', 'pay 8', { idempotencyKey: 'order-8/pay' })
  db.defaultSafeIntegers(true)
  assert.equal(db.transaction(() => publishIn(db, 'orders', 'x', { idempotencyKey: 'order-8/pay', queue: q }))(), byQueue)
  assert.equal(messageCount(q), 2)
  await q.close()
  db.close()
})

test('payloads as publish takes them: Buffer, Uint8Array, string', async () => {
  const { q, db } = setup()
  const bytes = Uint8Array.from([0, 1, 2, 255])
  const ids = db.transaction(() => [
    publishIn(db, 'orders', Buffer.from([9, 8])),
    publishIn(db, 'orders', bytes.subarray(1)),
    publishIn(db, 'orders', 'zwölf €'),
  ])()
  assert.deepEqual(q.message(ids[0]).payload, Buffer.from([9, 8]))
  assert.deepEqual(q.message(ids[1]).payload, Buffer.from([1, 2, 255]))
  assert.equal(q.message(ids[2]).payload.toString(), 'zwölf €')
  await q.close()
  db.close()
})

test('ackIn commits with the caller’s UPDATE; rolled back, the delivery stays held', async () => {
  const { q, db } = setup()
  db.prepare('INSERT INTO orders VALUES (?, ?)').run(1, 100)
  const id = q.publish('orders', 'order 1')
  const [d] = await q.receive('g')
  const pay = db.transaction(() => {
    db.prepare('UPDATE orders SET amount = 0 WHERE id = ?').run(1)
    ackIn(db, d, { queue: q })
  })
  const boom = new Error('after the ack')
  assert.throws(
    () =>
      db.transaction(() => {
        db.prepare('UPDATE orders SET amount = -5 WHERE id = ?').run(1)
        ackIn(db, d)
        throw boom
      })(),
    (e) => e === boom,
  )
  assert.deepEqual(amounts(db), [[1, 100]])
  assert.equal(q.message(id).deliveries.g.state, 'inflight')
  pay()
  assert.deepEqual(amounts(db), [[1, 0]])
  assert.equal(q.message(id).deliveries.g.state, 'acked')
  assert.equal(failure(() => db.transaction(() => ackIn(db, d))()).code, 'LEASE_LOST', 'acked already')
  await q.close()
  db.close()
})

test('a lost lease: ackIn throws LEASE_LOST and the caller’s transaction rolls back', async () => {
  const { q, clock, db } = setup()
  db.prepare('INSERT INTO orders VALUES (?, ?)').run(1, 100)
  const id = q.publish('orders', 'order 1')
  const [mine] = await q.receive('g', { leaseMs: 500 })
  clock.advance(501)
  const [theirs] = await q.receive('g')
  assert.equal(theirs.attempt, 2)
  const e = failure(() =>
    db.transaction(() => {
      db.prepare('UPDATE orders SET amount = 0 WHERE id = ?').run(1)
      ackIn(db, mine, { queue: q })
    })(),
  )
  assert.equal(e.code, 'LEASE_LOST')
  assert.match(e.message, new RegExp(`message ${id} in group g`))
  assert.ok(e.cause instanceof Error && e.cause.message.includes('ferrymq LEASE_LOST'), 'the library’s error is the cause')
  assert.deepEqual(amounts(db), [[1, 100]], 'the UPDATE was rolled back')
  assert.equal(q.message(id).deliveries.g.state, 'inflight')
  theirs.ack()
  await q.close()
  db.close()
})

// Each: what publish is given, in the options publishIn takes too.
/** @type {[string, any, any, any?][]} */
const BAD = [
  ['a topic with a space', 'or ders', 'x', {}],
  ['an empty topic', '', 'x', {}],
  ['a bad tag', 'orders', 'x', { tag: 'a||b' }],
  ['an empty key', 'orders', 'x', { key: '' }],
  ['headers not of strings', 'orders', 'x', { headers: { n: 1 } }],
  ['a negative delay', 'orders', 'x', { delayMs: -1 }],
  ['delay and deliverAt', 'orders', 'x', { delayMs: 5, deliverAt: new Date(START_MS) }],
  ['a payload over maxPayload', 'orders', Buffer.alloc(65), {}],
  ['a payload of the wrong type', 'orders', 42, {}],
  ['an unknown option', 'orders', 'x', { delay: 5 }],
  ['a topic that is not a string', 7, 'x', {}],
]

for (const [what, topic, body, opts] of BAD) {
  test(`bad input gets publish's error code and writes nothing: ${what}`, async () => {
    const { q, db } = setup({ maxPayload: 64 })
    const expected = failure(() => q.publish(topic, body, opts)).code
    const got = db.transaction(() => {
      db.prepare('INSERT INTO orders VALUES (?, ?)').run(1, 100)
      return failure(() => publishIn(db, topic, body, { ...opts, queue: q }))
    })()
    assert.equal(got.code, expected, got.message)
    assert.deepEqual(amounts(db), [[1, 100]], 'the caller’s transaction went on and committed')
    assert.equal(messageCount(q), 0)
    await q.close()
    db.close()
  })
}

test("the queue's maxPayload applies only with the queue", async () => {
  const { q, db } = setup({ maxPayload: 4 })
  db.transaction(() => {
    assert.equal(failure(() => publishIn(db, 'orders', '12345', { queue: q })).code, 'INVALID_ARGUMENT')
    publishIn(db, 'orders', '12345')
  })()
  assert.equal(messageCount(q), 1)
  await q.close()
  db.close()
})

test('outside a transaction: INVALID_ARGUMENT, nothing written', async () => {
  const { q, db } = setup()
  const e = failure(() => publishIn(db, 'orders', 'x', { key: 'k' }))
  assert.equal(e.code, 'INVALID_ARGUMENT')
  assert.match(e.message, /no transaction is open/)
  assert.equal(messageCount(q), 0)
  q.publish('orders', 'y')
  const [d] = await q.receive('g')
  assert.equal(failure(() => ackIn(db, d)).code, 'INVALID_ARGUMENT')
  assert.equal(q.message(d.messageId).deliveries.g.state, 'inflight')
  assert.equal(db.inTransaction, false, 'nothing left open')
  await q.close()
  db.close()
})

test("with a queue, a connection to another file: INVALID_ARGUMENT, nothing written", async () => {
  const { q, db } = setup()
  const other = setup()
  const e = failure(() => other.db.transaction(() => publishIn(other.db, 'orders', 'x', { queue: q }))())
  assert.equal(e.code, 'INVALID_ARGUMENT')
  assert.match(e.message, /not on the queue's file/)
  assert.equal(messageCount(other.q), 0)
  q.publish('orders', 'y')
  const [d] = await q.receive('g')
  const ack = failure(() => other.db.transaction(() => ackIn(other.db, d, { queue: q }))())
  assert.equal(ack.code, 'INVALID_ARGUMENT')
  db.transaction(() => ackIn(db, d, { queue: q }))()
  assert.equal(q.message(d.messageId).deliveries.g.state, 'acked')
  await q.close()
  await other.q.close()
  db.close()
  other.db.close()
})

test('not a connection, or a closed one: INVALID_ARGUMENT', async () => {
  const { q, db } = setup()
  for (const bad of [null, {}, 'q.db', q]) {
    assert.equal(failure(() => publishIn(/** @type {any} */ (bad), 'orders', 'x')).code, 'INVALID_ARGUMENT')
  }
  q.publish('orders', 'y')
  const [d] = await q.receive('g')
  assert.equal(failure(() => ackIn(db, /** @type {any} */ ({ messageId: d.messageId }))).code, 'INVALID_ARGUMENT')
  // closed: a connection to another file (closing one to the queue's file while the queue
  // is open would delete the WAL under it: README, "One process, one SQLite")
  const closed = new Database(tempDb('other.db'))
  closed.close()
  assert.equal(failure(() => publishIn(closed, 'orders', 'x')).code, 'INVALID_ARGUMENT')
  assert.equal(failure(() => ackIn(closed, d)).code, 'INVALID_ARGUMENT')
  assert.equal(q.message(d.messageId).deliveries.g.state, 'inflight')
  await q.close()
  db.close()
})

test('a plain SQLite file that ferrymq never opened: NOT_FOUND', async () => {
  const plain = new Database(tempDb('plain.db'))
  plain.exec('CREATE TABLE orders (id INTEGER PRIMARY KEY)')
  const e = failure(() =>
    plain.transaction(() => {
      plain.prepare('INSERT INTO orders VALUES (1)').run()
      publishIn(plain, 'orders', 'x')
    })(),
  )
  assert.equal(e.code, 'NOT_FOUND')
  assert.match(e.message, /Queue\.open/)
  assert.ok(e.cause instanceof Error)
  assert.deepEqual(plain.prepare('SELECT count(*) FROM orders').raw().get(), [0])
  const { q } = setup()
  q.publish('orders', 'y')
  const [d] = await q.receive('g')
  assert.equal(failure(() => plain.transaction(() => ackIn(plain, d))()).code, 'NOT_FOUND')
  await q.close()
  plain.close()
})

// Holds the file's write lock until killed.
const LOCK_HOLDER = `
  const Database = require('better-sqlite3')
  const db = new Database(process.argv[1])
  db.exec('BEGIN IMMEDIATE')
  console.log('locked')
  setInterval(() => {}, 1000)`

test("another process holding the write lock: BUSY, the library's error as cause", async () => {
  const { q, file, db } = setup()
  const impatient = new Database(file, { timeout: 0 })
  /** @type {() => void} */
  let locked = () => {}
  const isLocked = new Promise((/** @type {(v?: unknown) => void} */ r) => (locked = r))
  const holder = run(LOCK_HOLDER, [file], { onLine: (l) => l === 'locked' && locked() })
  try {
    await isLocked
    const e = failure(() => impatient.transaction(() => publishIn(impatient, 'orders', 'x'))())
    assert.equal(e.code, 'BUSY', e.message)
    assert.ok(e.cause instanceof Error && /** @type {any} */ (e.cause).code === 'SQLITE_BUSY')
  } finally {
    holder.child.kill()
    await holder.done
  }
  assert.equal(messageCount(q), 0)
  await q.close()
  impatient.close()
  db.close()
})

// Receives everything ready in `g` and prints it as JSON lines.
const PYTHON_CONSUMER = `
import json, sys, ferrymq
with ferrymq.Queue(sys.argv[1]) as q:
    while True:
        ds = q.receive("g", max=10)
        if not ds:
            break
        for d in ds:
            print(json.dumps({"id": d.message_id, "key": d.key, "payload": d.payload.decode(),
                              "headers": d.headers}), flush=True)
            d.ack()
`

test('a Python consumer in another process receives exactly the committed messages', async () => {
  const python = process.env.FERRYMQ_PYTHON
  assert.ok(python, 'FERRYMQ_PYTHON must name a Python with the ferrymq wheel installed (make test-node sets it)')
  const file = tempDb()
  const q = new Queue(file)
  q.subscribe('g', 'orders')
  const db = new Database(file)
  db.exec('CREATE TABLE orders (id INTEGER PRIMARY KEY, amount INTEGER)')
  /** @type {{ id: number, key: string, payload: string, headers: Record<string, string> }[]} */
  const committed = []
  for (let i = 0; i < 12; i++) {
    const key = `order-${i}`
    const place = db.transaction(() => {
      db.prepare('INSERT INTO orders VALUES (?, ?)').run(i, 10 * i)
      const id = publishIn(db, 'orders', `placed ${i}`, { key, headers: { n: String(i) } })
      if (i % 3 === 1) throw new Error('rolled back')
      return id
    })
    try {
      committed.push({ id: place(), key, payload: `placed ${i}`, headers: { n: String(i) } })
    } catch (e) {
      assert.equal(/** @type {Error} */ (e).message, 'rolled back')
    }
  }
  await q.close()
  db.close()
  const out = await run(PYTHON_CONSUMER, [file], { command: python }).done
  assert.equal(out.code, 0, out.stderr)
  const got = out.stdout.trim().split('\n').map((l) => JSON.parse(l))
  assert.equal(committed.length, 8)
  assert.deepEqual(got, committed)
})

// node:sqlite: test/node_sqlite.test.js (run by `make test-node` under Node 22).
