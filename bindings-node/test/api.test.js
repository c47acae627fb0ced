'use strict'
// Every call of the API, through the real addon on real files.
const test = require('node:test')
const assert = require('node:assert/strict')
const { Queue, RetryPolicy, Resolution, Delivery, HalfMessage } = require('ferrymq')
const { clockedQueue, tempDb, START_MS } = require('./helpers.js')

test('open, path, closed and close', async () => {
  const db = tempDb()
  const q = new Queue(db, { synchronous: 'full', busyTimeoutMs: 2000 })
  assert.equal(q.path, db)
  assert.equal(q.closed, false)
  await q.close()
  assert.equal(q.closed, true)
})

test('publish with every option, receive, and the delivery fields', async () => {
  const { q } = clockedQueue()
  q.subscribe('pc', 'payments', { tags: 'created || retried' })
  const id = q.publish('payments', Buffer.from('pay 42'), {
    tag: 'created',
    key: 'order-42',
    headers: { traceparent: '00-abc-def-01' },
    orderingKey: 'account-7',
    idempotencyKey: 'order-42/pay',
  })
  assert.equal(typeof id, 'number')
  const [d, ...rest] = await q.receive('pc', { max: 10 })
  assert.equal(rest.length, 0)
  assert.ok(d instanceof Delivery)
  assert.equal(d.messageId, id)
  assert.equal(d.topic, 'payments')
  assert.equal(d.tag, 'created')
  assert.equal(d.key, 'order-42')
  assert.deepEqual(d.payload, Buffer.from('pay 42'))
  assert.deepEqual(d.headers, { traceparent: '00-abc-def-01' })
  assert.equal(d.orderingKey, 'account-7')
  assert.equal(d.attempt, 1)
  assert.equal(d.consumerGroup, 'pc')
  assert.deepEqual(d.publishedAt, new Date(START_MS))
  assert.equal(d.leaseUntil.getTime(), START_MS + 30_000)
  d.ack()
  assert.equal(q.message(id).deliveries.pc.state, 'acked')
})

test('payloads: Buffer, Uint8Array and string go in, Buffer comes out', async () => {
  const { q } = clockedQueue()
  q.subscribe('g', 't')
  const bytes = new Uint8Array([0, 1, 2, 255])
  q.publish('t', bytes)
  q.publish('t', 'héllo')
  q.publish('t', Buffer.alloc(0))
  const ds = await q.receive('g', { max: 3 })
  assert.deepEqual(ds.map((d) => d.payload), [Buffer.from(bytes), Buffer.from('héllo'), Buffer.alloc(0)])
  for (const d of ds) d.ack()
})

test('a tag filter, and fan-out to two groups', async () => {
  const { q } = clockedQueue()
  q.subscribe('created-only', 'orders', { tags: 'created' })
  q.subscribe('audit', 'orders')
  q.publish('orders', 'a', { tag: 'created' })
  q.publish('orders', 'b', { tag: 'refunded' })
  const created = await q.receive('created-only', { max: 10 })
  const audit = await q.receive('audit', { max: 10 })
  assert.deepEqual(created.map((d) => d.payload.toString()), ['a'])
  assert.deepEqual(audit.map((d) => d.payload.toString()), ['a', 'b'])
})

test('idempotency keys return the first id and enqueue nothing', () => {
  const { q } = clockedQueue()
  const a = q.publish('t', 'x', { idempotencyKey: 'k' })
  const b = q.publish('t', 'y', { idempotencyKey: 'k' })
  assert.equal(a, b)
  assert.equal(q.stats().topics.t.messages, 1)
})

test('delayMs and deliverAt (Date or ms) hold a message back until its time', async () => {
  const { q, clock } = clockedQueue()
  q.subscribe('g', 't')
  q.publish('t', 'delayed', { delayMs: 5000 })
  q.publish('t', 'at-date', { deliverAt: new Date(START_MS + 10_000) })
  q.publish('t', 'at-ms', { deliverAt: START_MS + 10_000 })
  assert.equal(q.stats().groups.g.scheduled, 3)
  assert.deepEqual(await q.receive('g'), [])
  clock.advance(5000)
  assert.deepEqual((await q.receive('g', { max: 5 })).map((d) => d.payload.toString()), ['delayed'])
  clock.advance(5000)
  assert.deepEqual((await q.receive('g', { max: 5 })).map((d) => d.payload.toString()), ['at-date', 'at-ms'])
})

test('publishAsync and publishBatch', async () => {
  const { q } = clockedQueue()
  q.subscribe('g', 't')
  const id = await q.publishAsync('t', 'async', { key: 'k1' })
  const ids = q.publishBatch([
    { topic: 't', payload: 'b1', tag: 'x' },
    { topic: 't', payload: Buffer.from('b2'), key: 'k2' },
  ])
  assert.equal(ids.length, 2)
  assert.ok(ids[0] > id)
  const ds = await q.receive('g', { max: 10 })
  assert.deepEqual(ds.map((d) => d.payload.toString()), ['async', 'b1', 'b2'])
  assert.equal(ds[1].tag, 'x')
  assert.equal(q.find('t', 'k2')[0].id, ids[1])
})

test('nack retries on the policy, then the dead-letter queue, redrive and purge', async () => {
  const { q, clock } = clockedQueue()
  q.subscribe('g', 't', { retry: RetryPolicy.fixed([1000, 2000]) })
  const id = q.publish('t', 'poison', { key: 'p' })
  for (const wait of [1000, 2000]) {
    const [d] = await q.receive('g')
    d.nack('boom')
    assert.equal(q.stats().groups.g.retrying, 1)
    clock.advance(wait)
  }
  const [last] = await q.receive('g')
  assert.equal(last.attempt, 3)
  last.nack('still boom')
  const dead = q.deadLetters('g')
  assert.equal(dead.length, 1)
  assert.equal(dead[0].messageId, id)
  assert.equal(dead[0].attempts, 3)
  assert.equal(dead[0].lastError, 'still boom')
  assert.equal(dead[0].history.length, 3)
  assert.ok(dead[0].diedAt instanceof Date)
  assert.equal(q.redrive('g', { ids: [id] }), 1)
  const [again] = await q.receive('g')
  assert.equal(again.messageId, id)
  again.nack('dead again', { delayMs: 0 })
  assert.equal(q.stats().groups.g.dead, 0, 'a redriven message gets the schedule again')
  clock.advance(1000)
  const [third] = await q.receive('g')
  third.nack('x')
  clock.advance(2000)
  ;(await q.receive('g'))[0].nack('x')
  assert.equal(q.stats().groups.g.dead, 1)
  assert.equal(q.purgeDeadLetters('g'), 1)
  assert.equal(q.deadLetters('g').length, 0)
})

test('nack with delayMs, extend and settle', async () => {
  const { q, clock } = clockedQueue()
  q.subscribe('g', 't', { leaseMs: 1000 })
  q.publish('t', 'a')
  const [d] = await q.receive('g')
  d.extend(60_000)
  assert.equal(d.leaseUntil.getTime(), START_MS + 60_000)
  clock.advance(2000)
  assert.deepEqual(await q.receive('g'), [], 'the extended lease still holds')
  d.nack('later', { delayMs: 500 })
  clock.advance(500)
  const [again] = await q.receive('g')
  assert.equal(again.settle(new Error('fails')), 'retrying')
  assert.equal(q.message(again.messageId).deliveries.g.lastError, 'fails')
  clock.advance(30_000) // RocketMQ's second retry step
  const [third] = await q.receive('g')
  assert.equal(third.settle(), 'acked')
  assert.equal(third.settle(), 'lease_lost')
})

test('a lease that expires redelivers to the next consumer', async () => {
  const { q, clock } = clockedQueue()
  q.subscribe('g', 't')
  q.publish('t', 'a')
  const [first] = await q.receive('g', { leaseMs: 1000 })
  clock.advance(1001)
  const [second] = await q.receive('g')
  assert.equal(second.messageId, first.messageId)
  assert.equal(second.attempt, 2)
})

test('ordered groups deliver one message of a group at a time', async () => {
  const { q } = clockedQueue()
  q.subscribe('g', 't')
  q.publish('t', '1', { orderingKey: 'acct' })
  q.publish('t', '2', { orderingKey: 'acct' })
  const first = await q.receive('g', { max: 10 })
  assert.deepEqual(first.map((d) => d.payload.toString()), ['1'])
  first[0].ack()
  const next = await q.receive('g', { max: 10 })
  assert.deepEqual(next.map((d) => d.payload.toString()), ['2'])
})

test('stats, message, find and purgeAcked', async () => {
  const { q, clock } = clockedQueue()
  q.subscribe('g', 't')
  const id = q.publish('t', 'x', { key: 'order-1', tag: 'created' })
  let s = q.stats()
  assert.deepEqual(s.topics.t, { messages: 1, half: 0 })
  assert.equal(s.groups.g.topic, 't')
  assert.equal(s.groups.g.ready, 1)
  assert.equal(s.groups.g.oldestReadyAge, 0)
  const info = q.message(id)
  assert.equal(info.state, 'committed')
  assert.equal(info.deliveries.g.state, 'ready')
  assert.ok(info.deliverAt instanceof Date)
  assert.deepEqual(q.find('t', 'order-1').map((m) => m.id), [id])
  assert.deepEqual(q.find('t', 'nope'), [])
  q.publish('t', 'newest') // the newest message is kept, so ids are never reused
  const [d] = await q.receive('g')
  s = q.stats()
  assert.equal(s.groups.g.inflight, 1)
  d.ack()
  const [rec] = q.message(id).deliveries.g.history
  assert.equal(rec.outcome, 'acked')
  assert.ok(rec.endedAt instanceof Date)
  assert.equal(await q.purgeAcked({ olderThanMs: 1000 }), 0)
  clock.advance(2000)
  assert.equal(await q.purgeAcked({ olderThanMs: 1000 }), 1)
  assert.throws(() => q.message(id), { code: 'NOT_FOUND' })
  assert.equal(await q.purgeAcked(), 0)
})

test('half messages: prepare, commit, rollback', async () => {
  const { q } = clockedQueue()
  q.subscribe('g', 'fund')
  const h = q.prepare('fund', 'buy', { key: 'tx-1' })
  assert.ok(h instanceof HalfMessage)
  assert.equal(q.message(h.id).state, 'half')
  assert.deepEqual(await q.receive('g'), [], 'a half message is invisible')
  assert.equal(q.halfMessages().length, 1)
  h.commit()
  const [d] = await q.receive('g')
  assert.equal(d.messageId, h.id)
  const r = q.prepare('fund', 'cancelled')
  r.rollback()
  assert.equal(q.message(r.id).state, 'rolled_back')
  assert.deepEqual(q.halfMessages({ state: 'rolled_back' }).map((m) => m.id), [r.id])
  assert.deepEqual(q.halfMessages({ state: 'half' }), [])
})

test('check-back: sync, async, throwing and wrong answers', async () => {
  const { q, clock } = clockedQueue({ checkAfterMs: 1000, checkIntervalMs: 1000 })
  q.subscribe('g', 'fund')
  const commit = q.prepare('fund', 'c', { key: 'commit' })
  const rollback = q.prepare('fund', 'r', { key: 'rollback' })
  const throws = q.prepare('fund', 't', { key: 'throw' })
  const wrong = q.prepare('fund', 'w', { key: 'wrong' })
  /** @type {string[]} */
  const asked = []
  q.setChecker('fund', async (info) => {
    asked.push(info.key ?? '')
    assert.equal(info.state, 'half')
    if (info.key === 'commit') return Resolution.COMMIT
    if (info.key === 'rollback') return Resolution.ROLLBACK
    if (info.key === 'throw') throw new Error('bank unreachable')
    return /** @type {any} */ ('maybe')
  })
  assert.equal(await q.runChecks(), 0, 'nothing is due before checkAfterMs')
  clock.advance(1000)
  assert.equal(await q.runChecks(), 2)
  assert.deepEqual(asked.sort(), ['commit', 'rollback', 'throw', 'wrong'])
  assert.equal(q.message(commit.id).state, 'committed')
  assert.equal(q.message(rollback.id).state, 'rolled_back')
  assert.equal(q.message(throws.id).state, 'half')
  const checks = q.message(throws.id).checks
  assert.equal(checks.length, 1)
  assert.equal(checks[0].resolution, 'unknown')
  assert.equal(checks[0].error, 'bank unreachable')
  assert.match(q.message(wrong.id).checks[0].error ?? '', /not a Resolution/)
  q.setChecker('fund', () => Resolution.COMMIT)
  clock.advance(1000)
  assert.equal(await q.runChecks(), 2)
  assert.equal(q.removeChecker('fund'), true)
  assert.equal(q.removeChecker('fund'), false)
  await q.close()
})

test('a checker whose answer or error cannot become text, or that never answers, counts as UNKNOWN', async () => {
  const { q, clock } = clockedQueue({ checkAfterMs: 0, checkIntervalMs: 300 })
  const odd = q.prepare('fund', 'a', { key: 'odd-answer' })
  const thrown = q.prepare('fund', 'b', { key: 'odd-throw' })
  const silent = q.prepare('fund', 'c', { key: 'silent' })
  q.setChecker('fund', (info) => {
    if (info.key === 'odd-answer') return /** @type {any} */ (Object.create(null))
    if (info.key === 'odd-throw') throw Object.create(null)
    return new Promise(() => {}) // never settles
  })
  const started = Date.now()
  assert.equal(await q.runChecks(), 0)
  assert.ok(Date.now() - started < 10_000, 'the silent checker was waited for at most checkIntervalMs')
  for (const h of [odd, thrown, silent]) {
    const [check] = q.message(h.id).checks
    assert.equal(check.resolution, 'unknown', String(h.id))
    assert.ok(check.error, `no error recorded for ${h.id}`)
  }
  assert.match(q.message(silent.id).checks[0].error ?? '', /did not answer within 300 ms/)
  clock.advance(0)
  await q.close()
})

test('the background checker answers without runChecks', async () => {
  const db = tempDb()
  const q = new Queue(db, { checkAfterMs: 50, checkIntervalMs: 50 })
  const h = q.prepare('fund', 'x')
  q.setChecker('fund', () => Resolution.COMMIT)
  const end = Date.now() + 10_000
  while (q.message(h.id).state === 'half' && Date.now() < end) await new Promise((r) => setTimeout(r, 20))
  assert.equal(q.message(h.id).state, 'committed')
  await q.close()
})

test('retry policies', () => {
  assert.equal(RetryPolicy.rocketmq().maxRetries, 16)
  assert.equal(RetryPolicy.alipay().maxRetries, 7)
  assert.equal(RetryPolicy.wechatPay().maxRetries, 15)
  assert.equal(RetryPolicy.fixed([500, 5000]).maxRetries, 2)
  assert.equal(RetryPolicy.exponential({ initialMs: 100, maxDelayMs: 1000, maxRetries: 5, jitter: 0 }).maxRetries, 5)
  assert.equal(RetryPolicy.exponential().maxRetries, 16) // the core's default
  assert.equal(RetryPolicy.exponential().maxRetries, 16)
  assert.equal(typeof RetryPolicy.rocketmq().toString(), 'string')
})

test('consume is an async iterator that ends with its signal', async () => {
  const { q } = clockedQueue()
  q.subscribe('g', 't')
  for (let i = 0; i < 5; i++) q.publish('t', `m${i}`)
  const abort = new AbortController()
  /** @type {string[]} */
  const got = []
  for await (const d of q.consume('g', { max: 2, waitMs: 50, signal: abort.signal })) {
    got.push(d.payload.toString())
    d.ack()
    if (got.length === 5) abort.abort()
  }
  assert.deepEqual(got, ['m0', 'm1', 'm2', 'm3', 'm4'])
  const it = q.consume('g', { waitMs: 10 })
  q.publish('t', 'late')
  const first = await it.next()
  assert.equal(first.done, false)
  await it.return(undefined)
})

test('worker runs handlers with concurrency and stops', async () => {
  const { q } = clockedQueue()
  q.subscribe('g', 't')
  for (let i = 0; i < 20; i++) q.publish('t', String(i))
  let running = 0
  let most = 0
  /** @type {string[]} */
  const seen = []
  const w = q.worker(
    'g',
    async (d) => {
      running++
      most = Math.max(most, running)
      await new Promise((r) => setTimeout(r, 5))
      seen.push(d.payload.toString())
      running--
    },
    { concurrency: 4, waitMs: 20 },
  )
  const end = Date.now() + 10_000
  while (seen.length < 20 && Date.now() < end) await new Promise((r) => setTimeout(r, 5))
  assert.equal(w.running, true)
  await w.stop()
  assert.equal(w.running, false)
  assert.equal(seen.length, 20)
  assert.equal(most, 4)
  assert.equal(q.stats().groups.g.ready + q.stats().groups.g.inflight, 0, 'every delivery was acked')
})

test('commitHalf and rollbackHalf by id, from a queue that only knows the ids', async () => {
  const db = tempDb()
  const q = new Queue(db)
  q.subscribe('g', 'fund-purchase')
  const buy = q.prepare('fund-purchase', 'buy').id
  const sell = q.prepare('fund-purchase', 'sell').id
  const other = new Queue(db)
  other.commitHalf(buy)
  other.rollbackHalf(sell)
  assert.deepEqual((await q.receive('g', { max: 10 })).map((d) => d.messageId), [buy])
  assert.equal(q.message(sell).state, 'rolled_back')
  const plain = q.publish('fund-purchase', 'not a half message')
  assert.throws(() => q.commitHalf(plain), (/** @type {any} */ e) => e.code === 'INVALID_ARGUMENT')
  assert.throws(() => q.rollbackHalf(1e9), (/** @type {any} */ e) => e.code === 'NOT_FOUND')
  await other.close()
  await q.close()
})

test("metrics: the file's gauges and this handle's counters", async () => {
  const db = tempDb()
  const q = new Queue(db)
  q.subscribe('g', 'orders')
  q.publish('orders', 'a')
  q.publish('orders', 'b')
  const [d] = await q.receive('g')
  d.ack()
  const text = q.metrics()
  assert.match(text, /# TYPE ferrymq_messages_ready gauge\n/)
  assert.ok(text.includes('ferrymq_messages_ready{topic="orders",consumer_group="g"} 1\n'), text)
  assert.ok(text.includes('ferrymq_messages_published_total{topic="orders"} 2\n'), text)
  assert.ok(text.includes('ferrymq_messages_acked_total{topic="orders",consumer_group="g"} 1\n'), text)
  const other = new Queue(db)
  assert.ok(!other.metrics().includes('ferrymq_messages_published_total{'))
  await other.close()
  await q.close()
})

test('topics lists each topic with its messages, ready deliveries and groups', async () => {
  const { q } = clockedQueue()
  assert.deepEqual(q.topics(), [])
  q.subscribe('billing', 'payments')
  q.subscribe('audit', 'payments')
  for (let i = 0; i < 3; i++) q.publish('payments', `p${i}`)
  const [held] = await q.receive('billing')
  q.publish('logs', 'nobody listens')
  assert.deepEqual(q.topics(), [
    { name: 'logs', messages: 1, ready: 0, groups: [] },
    { name: 'payments', messages: 3, ready: 5, groups: ['audit', 'billing'] },
  ])
  held?.ack()
})

test('checkFile reports integrity and the marks the file has now', async () => {
  const db = tempDb()
  const q = new Queue(db)
  q.publish('t', 'x')
  let c = await q.checkFile()
  assert.deepEqual(c.integrity, ['ok'])
  assert.equal(c.schemaVersion, c.expectedSchemaVersion)
  assert.equal(c.applicationId, 0x46727279)
  assert.equal(c.expectedApplicationId, 0x46727279)
  const Database = require('better-sqlite3')
  const own = new Database(db)
  own.pragma('application_id = 7')
  own.close()
  c = await q.checkFile()
  assert.deepEqual([c.integrity, c.applicationId], [['ok'], 7])
  await q.close()
})

