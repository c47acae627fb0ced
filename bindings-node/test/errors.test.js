'use strict'
// Every error kind, each from a real cause; bad input changes nothing.
const test = require('node:test')
const assert = require('node:assert/strict')
const fs = require('node:fs')
const { Queue, RetryPolicy, FerrymqError, ERROR_CODES } = require('ferrymq')
const { ManualClock } = require('ferrymq/testing')
const { clockedQueue, tempDb, run } = require('./helpers.js')

/** @param {string} code */
const is = (code) => (/** @type {any} */ e) => e instanceof FerrymqError && e.code === code

test('the error codes are the kinds of docs/DESIGN.md', () => {
  assert.deepEqual(
    [...ERROR_CODES],
    ['INVALID_ARGUMENT', 'NOT_FOUND', 'LEASE_LOST', 'CLOSED', 'BUSY', 'STORAGE', 'CALLBACK', 'FULL', 'ENCRYPTION'],
  )
  const e = new FerrymqError('CALLBACK', 'x')
  assert.ok(e instanceof Error)
  assert.equal(e.name, 'FerrymqError')
})

test('the native module sets the kind as the error code itself, sync and async', async () => {
  // A computed path: the native layer has no types of its own for tsc to check.
  const native = require(require('node:path').join(__dirname, '..', 'native.js'))
  const q = new native.NativeQueue(tempDb(), undefined, undefined)
  /** @param {string} code */
  const structured = (code) => (/** @type {any} */ e) => e.code === code && !e.message.startsWith(code)
  assert.throws(() => q.publish('bad topic', 'x', undefined), structured('INVALID_ARGUMENT'))
  assert.throws(() => q.message(424242), structured('NOT_FOUND'))
  await assert.rejects(q.publishAsync('bad topic', 'x', undefined), structured('INVALID_ARGUMENT'))
  await q.close()
  await assert.rejects(q.publishAsync('t', 'x', undefined), structured('CLOSED'))
})

test('a message that looks like a code is never read as one', () => {
  const { convertError } = require(require('node:path').join(__dirname, '..', 'errors.js'))
  const fake = Object.assign(new Error('LEASE_LOST: not really'), { code: 'GenericFailure' })
  const e = convertError(fake)
  assert.equal(e.code, 'STORAGE')
})

test('INVALID_ARGUMENT for bad input of every shape, and nothing changes', async () => {
  const { q } = clockedQueue()
  q.subscribe('g', 't')
  q.publish('t', 'kept')
  const before = JSON.stringify(q.stats())
  const bad = [
    () => q.publish('', 'x'),
    () => q.publish('bad topic', 'x'),
    () => q.publish('t'.repeat(250), 'x'),
    () => q.publish("t'; DROP TABLE ferrymq_messages; --", 'x'),
    () => q.publish('t', /** @type {any} */ (42)),
    () => q.publish('t', /** @type {any} */ (null)),
    () => q.publish(/** @type {any} */ (7), 'x'),
    () => q.publish('t', 'x', /** @type {any} */ ({ delay: 5 })),
    () => q.publish('t', 'x', /** @type {any} */ ('created')),
    () => q.publish('t', 'x', { tag: 'bad tag!' }),
    () => q.publish('t', 'x', { delayMs: -1 }),
    () => q.publish('t', 'x', { delayMs: Number.NaN }),
    () => q.publish('t', 'x', { delayMs: Infinity }),
    () => q.publish('t', 'x', { deliverAt: new Date(Number.NaN) }),
    () => q.publish('t', 'x', { deliverAt: -5 }),
    () => q.publish('t', 'x', { headers: /** @type {any} */ ({ a: 1 }) }),
    () => q.publishBatch(/** @type {any} */ ('x')),
    () => q.publishBatch([{ topic: 't', payload: 'ok' }, { topic: 'bad topic', payload: 'x' }]),
    () => q.subscribe('g', 't', { tags: '||' }),
    () => q.subscribe('g', 't', { leaseMs: 0 }),
    () => q.subscribe('g', 't', { retry: /** @type {any} */ ([1000]) }),
    () => RetryPolicy.fixed([-1]),
    () => RetryPolicy.exponential({ initialMs: 1000, maxDelayMs: 10 }),
    () => q.message(1.5),
    () => q.message(/** @type {any} */ ('1')),
    () => q.deadLetters('g', { limit: -1 }),
    () => q.deadLetters('g', { limit: 10_000_000 }),
    () => q.halfMessages({ state: /** @type {any} */ ('done') }),
    () => q.redrive('g', { ids: [0.5] }),
    () => q.transaction(/** @type {any} */ (null)),
    () => q.setChecker('t', /** @type {any} */ ('commit')),
    () => q.worker('g', /** @type {any} */ (null)),
    () => q.worker('g', async () => {}, { concurrency: 0 }),
    // The core's bound for a worker's threads holds for the event-loop worker's loops.
    () => q.worker('g', async () => {}, { concurrency: 257 }),
    () => new Queue(tempDb(), /** @type {any} */ ({ synchronous: 'sometimes' })),
    () => new Queue(tempDb(), /** @type {any} */ ({ testClock: {} })),
    () => new ManualClock(0).advance(-1),
  ]
  for (const [i, f] of bad.entries()) {
    assert.throws(f, is('INVALID_ARGUMENT'), `case ${i}: ${f}`)
  }
  for (const opts of [{ max: 0 }, { max: 1.5 }, { max: 100_000 }, { waitMs: -1 }, { leaseMs: 0 }, { nope: 1 }]) {
    await assert.rejects(q.receive('g', /** @type {any} */ (opts)), is('INVALID_ARGUMENT'), JSON.stringify(opts))
  }
  await assert.rejects(q.publishAsync('bad topic', 'x'), is('INVALID_ARGUMENT'))
  await assert.rejects(q.purgeAcked({ olderThanMs: -1 }), is('INVALID_ARGUMENT'))
  assert.equal(JSON.stringify(q.stats()), before)
  const [d] = await q.receive('g')
  assert.throws(() => d.nack(/** @type {any} */ (5)), is('INVALID_ARGUMENT'))
  assert.throws(() => d.extend(-5), is('INVALID_ARGUMENT'))
  assert.throws(() => d.nack('x', { delayMs: -1 }), is('INVALID_ARGUMENT'))
  d.ack()
})

test('NOT_FOUND for an unknown group, message or dead letter', async () => {
  const { q } = clockedQueue()
  await assert.rejects(q.receive('nobody'), is('NOT_FOUND'))
  assert.throws(() => q.message(424242), is('NOT_FOUND'))
  assert.throws(() => q.deadLetters('nobody'), is('NOT_FOUND'))
})

test('LEASE_LOST when another consumer took the message over', async () => {
  const { q, clock } = clockedQueue()
  q.subscribe('g', 't')
  q.publish('t', 'x')
  const [mine] = await q.receive('g', { leaseMs: 1000 })
  clock.advance(1001)
  const [theirs] = await q.receive('g')
  assert.throws(() => mine.ack(), is('LEASE_LOST'))
  assert.throws(() => mine.nack('late'), is('LEASE_LOST'))
  assert.throws(() => mine.extend(1000), is('LEASE_LOST'))
  theirs.ack()
})

test('CLOSED after close, for sync calls and Promises', async () => {
  const { q } = clockedQueue()
  q.subscribe('g', 't')
  await q.close()
  assert.throws(() => q.publish('t', 'x'), is('CLOSED'))
  assert.throws(() => q.stats(), is('CLOSED'))
  await assert.rejects(q.receive('g'), is('CLOSED'))
  await assert.rejects(q.publishAsync('t', 'x'), is('CLOSED'))
})

test('BUSY when another process holds the write lock past busyTimeoutMs', async () => {
  const db = tempDb()
  const q = new Queue(db, { busyTimeoutMs: 100 })
  q.subscribe('g', 't')
  // The holder is another process: locks are per process (POSIX), so a second handle in
  // this process would not wait for the first.
  const holder = `
    const { Queue } = require('ferrymq')
    const q = new Queue(process.argv[1])
    q.transaction((tx) => {
      tx.publish('t', 'held')
      console.log('locked')
      Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 1500)
    })
    console.log('released')`
  /** @type {() => void} */
  let locked = () => {}
  const isLocked = new Promise((resolve) => {
    locked = () => resolve(undefined)
  })
  const child = run(holder, [db], { onLine: (l) => l === 'locked' && locked() })
  await isLocked
  assert.throws(() => q.publish('t', 'x'), is('BUSY'))
  const out = await child.done
  assert.equal(out.code, 0, out.stderr)
  assert.match(out.stdout, /released/)
  q.publish('t', 'after')
  assert.equal(q.stats().topics.t.messages, 2)
})

test('STORAGE for a foreign file, which stays unchanged', () => {
  const path = tempDb('notes.txt')
  fs.writeFileSync(path, 'not a database '.repeat(200))
  const before = fs.readFileSync(path)
  assert.throws(() => new Queue(path), is('STORAGE'))
  assert.deepEqual(fs.readFileSync(path), before)
})

test('STORAGE when the file reaches maxSize; the queue stays usable', () => {
  const q = new Queue(tempDb(), { maxSize: 256 * 1024 })
  const body = Buffer.alloc(8 * 1024, 7)
  let published = 0
  assert.throws(() => {
    for (;;) {
      q.publish('t', body)
      published++
    }
  }, is('STORAGE'))
  assert.ok(published > 0)
  assert.equal(q.stats().topics.t.messages, published)
})
