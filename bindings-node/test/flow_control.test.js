'use strict'
// Flow control through the binding: pause/resume, maxInflight across processes, maxReady
// and FULL. The core decides; these check that the options, calls, stats field and error
// code reach it and come back.
const test = require('node:test')
const assert = require('node:assert/strict')
const path = require('node:path')
const Database = require('better-sqlite3')
const { Queue, FerrymqError } = require('ferrymq')
const { clockedQueue, tempDb, run } = require('./helpers.js')

/** @param {string} code */
const is = (code) => (/** @type {any} */ e) => e instanceof FerrymqError && e.code === code

/** @param {Queue} q @param {string} topic @param {number} n */
function publishN(q, topic, n) {
  for (let i = 0; i < n; i++) q.publish(topic, `m${i}`)
}

/** Everything a refused call must leave as it was. @param {Queue} q */
function snapshot(q) {
  return JSON.stringify(q.stats())
}

test('a paused group receives nothing, its messages accumulate, other groups go on, resume hands them out', async () => {
  const { q } = clockedQueue()
  q.subscribe('g', 't')
  q.subscribe('other', 't')
  publishN(q, 't', 2)
  q.pause('g')
  q.pause('g') // twice is fine
  q.publish('t', 'm2')
  assert.deepEqual(await q.receive('g', { max: 10 }), [])
  const s = q.stats()
  assert.equal(s.groups.g.paused, true)
  assert.equal(s.groups.g.ready, 3)
  assert.equal(s.groups.other.paused, false)
  assert.equal((await q.receive('other', { max: 10 })).length, 3)
  q.resume('g')
  q.resume('g') // twice is fine
  assert.equal(q.stats().groups.g.paused, false)
  const got = await q.receive('g', { max: 10 })
  assert.deepEqual(
    got.map((d) => d.payload.toString()),
    ['m0', 'm1', 'm2'],
  )
  await q.close()
})

test('a waiting receive stays empty while paused and gets the message once resumed', async () => {
  const q = new Queue(tempDb())
  q.subscribe('g', 't')
  q.pause('g')
  q.publish('t', 'x')
  const waiting = q.receive('g', { waitMs: 60_000 })
  // Let the wait start on the native side before resuming.
  await new Promise((r) => setTimeout(r, 50))
  q.resume('g')
  const got = await waiting
  assert.deepEqual(
    got.map((d) => d.payload.toString()),
    ['x'],
  )
  await q.close()
})

test('a delivery held when its group is paused can still be acked', async () => {
  const { q } = clockedQueue()
  q.subscribe('g', 't')
  publishN(q, 't', 1)
  const [d] = await q.receive('g')
  q.pause('g')
  d.ack()
  assert.equal(q.stats().groups.g.inflight, 0)
  await q.close()
})

test('pause and resume of an unknown group are NOT_FOUND; bad names and types are INVALID_ARGUMENT', async () => {
  const { q } = clockedQueue()
  assert.throws(() => q.pause('nobody'), is('NOT_FOUND'))
  assert.throws(() => q.resume('nobody'), is('NOT_FOUND'))
  assert.throws(() => q.pause('bad name'), is('INVALID_ARGUMENT'))
  assert.throws(() => q.resume(/** @type {any} */ (42)), is('INVALID_ARGUMENT'))
  assert.deepEqual(q.stats().groups, {})
  await q.close()
})

// The child: a receive that finds the group at its limit gets nothing; then it waits, and
// the parent's ack lets exactly one through. It exits holding that delivery.
const CHILD = `
const { Queue } = require('ferrymq')
const q = new Queue(process.argv[1])
;(async () => {
  const now = await q.receive('g', { max: 10 })
  console.log('NOW ' + now.length)
  const waiting = q.receive('g', { max: 10, waitMs: 60000 })
  console.log('READY')
  const got = await waiting
  console.log('GOT ' + got.map((d) => d.payload.toString()).join(','))
  process.exit(0)
})()
`

test('maxInflight holds across processes: a child process gets nothing at the limit, one delivery per ack', async () => {
  const db = tempDb()
  const q = new Queue(db)
  q.subscribe('g', 't', { maxInflight: 2 })
  publishN(q, 't', 5)
  const held = await q.receive('g', { max: 10 })
  assert.equal(held.length, 2)
  /** @type {string[]} */
  const lines = []
  let acked = false
  const child = run(CHILD, [db], {
    onLine: (line) => {
      lines.push(line)
      if (line === 'READY' && !acked) {
        acked = true
        held[0].ack()
      }
    },
  })
  const r = await child.done
  assert.equal(r.code, 0, r.stderr)
  assert.deepEqual(lines, ['NOW 0', 'READY', 'GOT m2'])
  // The child died holding m2: with held[1] that is the limit again.
  const s = q.stats().groups.g
  assert.equal(s.inflight, 2)
  assert.equal(s.ready, 2)
  assert.deepEqual(await q.receive('g', { max: 10 }), [])
  // Subscribing again without the option lifts the limit.
  q.subscribe('g', 't')
  assert.equal((await q.receive('g', { max: 10 })).length, 2)
  await q.close()
})

test('maxInflight and maxReady out of range or not whole numbers are INVALID_ARGUMENT and change nothing', async () => {
  const { q, db } = clockedQueue()
  for (const n of [0, 1_000_001, -1, 1.5, NaN]) {
    assert.throws(() => q.subscribe('g', 't', { maxInflight: n }), is('INVALID_ARGUMENT'), String(n))
    assert.throws(() => new Queue(db, { maxReady: n }), is('INVALID_ARGUMENT'), String(n))
  }
  assert.throws(() => q.subscribe('g', 't', { maxInflight: /** @type {any} */ ('2') }), is('INVALID_ARGUMENT'))
  assert.throws(() => new Queue(db, { maxReady: /** @type {any} */ ('2') }), is('INVALID_ARGUMENT'))
  assert.deepEqual(q.stats().groups, {})
  q.subscribe('g', 't', { maxInflight: 1_000_000 })
  await new Queue(db, { maxReady: 1_000_000 }).close()
  await q.close()
})

test('past maxReady, publish, publishAsync, publishBatch and prepare fail with FULL and write nothing', async () => {
  const { q } = clockedQueue({ maxReady: 2 })
  q.subscribe('g', 't')
  publishN(q, 't', 2)
  const before = snapshot(q)
  assert.throws(() => q.publish('t', 'x'), (/** @type {any} */ e) => {
    assert.ok(is('FULL')(e), String(e))
    assert.match(e.message, /max_ready/)
    return true
  })
  await assert.rejects(q.publishAsync('t', 'x'), is('FULL'))
  assert.throws(() => q.publishBatch([{ topic: 't', payload: 'x' }]), is('FULL'))
  assert.throws(() => q.prepare('t', 'x'), is('FULL'))
  assert.equal(snapshot(q), before)
  // A topic no full group waits on is not held; a delivery taken frees a place.
  q.publish('other', 'y')
  await q.receive('g')
  q.publish('t', 'z')
  await q.close()
})

test('a FULL publish inside q.transaction rolls back the business rows with it', async () => {
  const { q, db } = clockedQueue({ maxReady: 1 })
  q.subscribe('g', 't')
  publishN(q, 't', 1)
  const before = snapshot(q)
  assert.throws(
    () =>
      q.transaction((tx) => {
        tx.execute('CREATE TABLE orders (id INTEGER)')
        tx.execute('INSERT INTO orders VALUES (1)')
        tx.publish('t', 'x')
      }),
    is('FULL'),
  )
  assert.equal(snapshot(q), before)
  const raw = new Database(db, { readonly: true })
  try {
    const row = /** @type {{ n: number }} */ (raw.prepare("SELECT count(*) AS n FROM sqlite_master WHERE name = 'orders'").get())
    assert.equal(row.n, 0)
  } finally {
    raw.close()
  }
  await q.close()
})

test('the native module gives FULL as the error code itself, sync and async', async () => {
  // A computed path: the native layer has no types of its own for tsc to check.
  const native = require(path.join(__dirname, '..', 'native.js'))
  const q = new native.NativeQueue(tempDb(), { maxReady: 1 }, undefined)
  q.subscribe('g', 't', undefined, undefined)
  q.publish('t', 'a', undefined)
  /** @param {any} e */
  const structured = (e) => e.code === 'FULL' && !e.message.startsWith('FULL')
  assert.throws(() => q.publish('t', 'b', undefined), structured)
  await assert.rejects(q.publishAsync('t', 'b', undefined), structured)
  await q.close()
})
