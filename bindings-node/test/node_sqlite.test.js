'use strict'
// publishIn / ackIn on node:sqlite's DatabaseSync (Node 22.5+; `make test-node` runs this
// file with a Node 22 from the npm registry, FERRYMQ_NODE22). It loads no better-sqlite3,
// whose addon is built for the Node that runs the rest of the suite.
const test = require('node:test')
const assert = require('node:assert/strict')
const { Queue, FerrymqError, publishIn, ackIn } = require('ferrymq')
const { tempDb, run } = require('./helpers.js')

/** @returns {any} */
function nodeSqlite() {
  try {
    const name = 'node:sqlite'
    return require(name)
  } catch {
    return undefined
  }
}
const sqlite = nodeSqlite()
const SKIP = sqlite === undefined && `node:sqlite is not in Node ${process.version} (it came with 22.5): skipped`

/**
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

function setup() {
  const file = tempDb()
  const q = new Queue(file)
  q.subscribe('g', 'orders', { leaseMs: 30_000 })
  const db = new sqlite.DatabaseSync(file)
  db.exec('CREATE TABLE orders (id INTEGER PRIMARY KEY, amount INTEGER)')
  return { q, db, file }
}

test('node:sqlite DatabaseSync: commit, rollback, ackIn, lease lost', { skip: SKIP }, async () => {
  const { q, db } = setup()
  db.exec('BEGIN')
  db.prepare('INSERT INTO orders VALUES (?, ?)').run(1, 100)
  const id = publishIn(db, 'orders', 'order 1', { key: 'order-1', queue: q })
  db.exec('COMMIT')
  db.exec('BEGIN')
  db.prepare('INSERT INTO orders VALUES (?, ?)').run(2, 200)
  publishIn(db, 'orders', 'order 2', { key: 'order-2' })
  db.exec('ROLLBACK')
  assert.deepEqual(q.find('orders', 'order-2'), [])
  assert.equal(db.prepare('SELECT count(*) AS n FROM orders').get()?.n, 1)
  assert.equal(q.message(id).key, 'order-1')
  assert.equal(failure(() => publishIn(db, 'orders', 'x')).code, 'INVALID_ARGUMENT', 'outside a transaction')
  db.exec('BEGIN')
  assert.equal(failure(() => publishIn(db, 'or ders', 'x')).code, 'INVALID_ARGUMENT')
  db.exec('ROLLBACK')
  const [d] = await q.receive('g')
  db.exec('BEGIN')
  db.prepare('UPDATE orders SET amount = 0 WHERE id = ?').run(1)
  ackIn(db, d, { queue: q })
  db.exec('COMMIT')
  assert.equal(q.message(id).deliveries.g.state, 'acked')
  db.exec('BEGIN')
  assert.equal(failure(() => ackIn(db, d)).code, 'LEASE_LOST')
  db.exec('ROLLBACK')
  await q.close()
  db.close()
})

const PYTHON_CONSUMER = `
import sys, ferrymq
with ferrymq.Queue(sys.argv[1]) as q:
    while True:
        ds = q.receive("g", max=10)
        if not ds:
            break
        for d in ds:
            print(d.message_id, d.key, flush=True)
            d.ack()
`

test('node:sqlite: a Python consumer receives exactly the committed messages', { skip: SKIP }, async () => {
  const python = process.env.FERRYMQ_PYTHON
  assert.ok(python, 'FERRYMQ_PYTHON must name a Python with the ferrymq wheel installed (make test-node sets it)')
  const { q, db, file } = setup()
  /** @type {string[]} */
  const committed = []
  for (let i = 0; i < 12; i++) {
    db.exec('BEGIN IMMEDIATE')
    db.prepare('INSERT INTO orders VALUES (?, ?)').run(i, 10 * i)
    const id = publishIn(db, 'orders', `placed ${i}`, { key: `order-${i}` })
    if (i % 3 === 1) {
      db.exec('ROLLBACK')
    } else {
      db.exec('COMMIT')
      committed.push(`${id} order-${i}`)
    }
  }
  await q.close()
  db.close()
  const out = await run(PYTHON_CONSUMER, [file], { command: python }).done
  assert.equal(out.code, 0, out.stderr)
  assert.deepEqual(out.stdout.trim().split('\n'), committed)
  assert.equal(committed.length, 8)
})
