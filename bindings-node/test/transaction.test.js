'use strict'
// The outbox: a business row and its message commit together or not at all.
const test = require('node:test')
const assert = require('node:assert/strict')
const { FerrymqError } = require('ferrymq')
const { clockedQueue } = require('./helpers.js')

/** @param {import('ferrymq').Queue} q */
function setup(q) {
  q.subscribe('pc', 'orders')
  q.transaction((tx) => {
    tx.execute('CREATE TABLE orders (id INTEGER PRIMARY KEY, amount REAL, note TEXT, doc BLOB)')
  })
}

test('commit: the row and the message appear together; values round-trip', async () => {
  const { q } = clockedQueue()
  setup(q)
  const id = q.transaction((tx) => {
    assert.equal(tx.execute('INSERT INTO orders VALUES (?, ?, ?, ?)', [42, 99.5, 'héllo', Buffer.from([1, 2])]), 1)
    tx.execute('INSERT INTO orders (id, amount, note) VALUES (?, ?, ?)', [43n, true, undefined])
    return tx.publish('orders', 'order 42', { key: 'order-42' })
  })
  const rows = q.transaction((tx) => tx.query('SELECT id, amount, note, doc FROM orders ORDER BY id'))
  assert.deepEqual(rows, [
    [42, 99.5, 'héllo', Buffer.from([1, 2])],
    [43, 1, null, null],
  ])
  const [d] = await q.receive('pc')
  assert.equal(d.messageId, id)
})

test('integers beyond 2^53 come back as BigInt, exactly', () => {
  const { q } = clockedQueue()
  setup(q)
  const big = 2n ** 62n + 1n
  q.transaction((tx) => tx.execute('INSERT INTO orders (id, amount) VALUES (?, ?)', [big, 2 ** 52]))
  const [[id, amount]] = q.transaction((tx) => tx.query('SELECT id, amount FROM orders'))
  assert.equal(id, big)
  assert.equal(amount, 2 ** 52)
})

test('rollback: a throwing callback leaves neither row nor message, and its error comes out', async () => {
  const { q } = clockedQueue()
  setup(q)
  const boom = new Error('payment declined')
  assert.throws(
    () =>
      q.transaction((tx) => {
        tx.execute('INSERT INTO orders (id, amount) VALUES (?, ?)', [1, 10])
        tx.publish('orders', 'order 1')
        tx.publishBatch([{ topic: 'orders', payload: 'order 1b' }])
        throw boom
      }),
    (e) => e === boom,
  )
  assert.deepEqual(q.transaction((tx) => tx.query('SELECT count(*) FROM orders')), [[0]])
  assert.deepEqual(await q.receive('pc'), [])
  assert.equal(q.stats().topics.orders?.messages ?? 0, 0)
})

test('ack inside a transaction: LEASE_LOST rolls the business write back', async () => {
  const { q, clock } = clockedQueue()
  setup(q)
  q.transaction((tx) => {
    tx.execute('CREATE TABLE accounts (id INTEGER PRIMARY KEY, balance INTEGER)')
    tx.execute('INSERT INTO accounts VALUES (7, 1000)')
  })
  q.publish('orders', 'debit 100')
  const [d] = await q.receive('pc', { leaseMs: 1000 })
  clock.advance(1001)
  const [other] = await q.receive('pc')
  assert.throws(
    () =>
      q.transaction((tx) => {
        tx.execute('UPDATE accounts SET balance = balance - 100 WHERE id = 7')
        tx.ack(d)
      }),
    (e) => e instanceof FerrymqError && e.code === 'LEASE_LOST',
  )
  assert.deepEqual(q.transaction((tx) => tx.query('SELECT balance FROM accounts')), [[1000]])
  q.transaction((tx) => {
    tx.execute('UPDATE accounts SET balance = balance - 100 WHERE id = 7')
    tx.ack(other)
  })
  assert.deepEqual(q.transaction((tx) => tx.query('SELECT balance FROM accounts')), [[900]])
  assert.equal(q.message(other.messageId).deliveries.pc.state, 'acked')
})

test('nack inside a transaction', async () => {
  const { q } = clockedQueue()
  setup(q)
  q.publish('orders', 'x')
  const [d] = await q.receive('pc')
  q.transaction((tx) => tx.nack(d, 'not yet', { delayMs: 1000 }))
  assert.equal(q.message(d.messageId).deliveries.pc.lastError, 'not yet')
})

test('an async callback is refused and rolled back', async () => {
  const { q } = clockedQueue()
  setup(q)
  assert.throws(
    () =>
      q.transaction(/** @type {any} */ (async (/** @type {import('ferrymq').Transaction} */ tx) => {
        tx.publish('orders', 'x')
      })),
    (e) => e instanceof FerrymqError && e.code === 'INVALID_ARGUMENT' && /synchronous/.test(e.message),
  )
  assert.deepEqual(await q.receive('pc'), [])
  q.publish('orders', 'the lock was released')
})

test('refused SQL, bad SQL, and a transaction used after it ended', () => {
  const { q } = clockedQueue()
  setup(q)
  /** @type {import('ferrymq').Transaction | undefined} */
  let kept
  const invalid = (/** @type {any} */ e) => e instanceof FerrymqError && e.code === 'INVALID_ARGUMENT'
  assert.throws(() => q.transaction((tx) => tx.execute('COMMIT')), invalid)
  assert.throws(() => q.transaction((tx) => tx.execute('DELETE FROM ferrymq_messages')), invalid)
  assert.throws(() => q.transaction((tx) => tx.execute('SELEC nonsense')), invalid)
  assert.throws(() => q.transaction((tx) => tx.execute('SELECT ?', /** @type {any} */ ([{}]))), invalid)
  q.transaction((tx) => {
    kept = tx
  })
  assert.throws(() => kept?.publish('orders', 'late'), invalid)
})
