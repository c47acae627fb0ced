'use strict'
// A handler that throws or rejects nacks with its message; the process never crashes.
const test = require('node:test')
const assert = require('node:assert/strict')
const { RetryPolicy } = require('ferrymq')
const { clockedQueue, until, run, tempDb } = require('./helpers.js')

test('thrown errors, rejections and thrown non-Errors become nacks with their text', async () => {
  const { q } = clockedQueue()
  q.subscribe('g', 't', { retry: RetryPolicy.fixed([60_000]) })
  const ids = ['throw', 'reject', 'string', 'ok'].map((k) => q.publish('t', k, { key: k }))
  const w = q.worker('g', (d) => {
    const kind = d.payload.toString()
    if (kind === 'throw') throw new TypeError('bad amount')
    if (kind === 'reject') return Promise.reject(new Error('bank said no'))
    if (kind === 'string') throw 'plain string' // eslint-disable-line no-throw-literal
    return undefined
  }, { waitMs: 20 })
  await until(() => ids.every((id) => q.message(id).deliveries.g.state !== 'ready' && q.message(id).deliveries.g.state !== 'inflight'))
  await w.stop()
  const last = ids.map((id) => q.message(id).deliveries.g)
  assert.deepEqual(
    last.map((d) => [d.state, d.lastError]),
    [
      ['scheduled', 'bad amount'],
      ['scheduled', 'bank said no'],
      ['scheduled', 'plain string'],
      ['acked', null],
    ],
  )
})

test('past the last retry a failing handler sends the message to the DLQ', async () => {
  const { q, clock } = clockedQueue()
  q.subscribe('g', 't', { retry: RetryPolicy.fixed([10]) })
  const id = q.publish('t', 'poison')
  const w = q.worker('g', () => {
    throw new Error('poison')
  }, { waitMs: 10 })
  await until(() => q.message(id).deliveries.g.attempts === 1 && q.message(id).deliveries.g.state === 'scheduled')
  clock.advance(10)
  await until(() => q.message(id).deliveries.g.state === 'dead')
  await w.stop()
  assert.equal(q.deadLetters('g')[0].lastError, 'poison')
})

test('a worker whose queue closes ends: done rejects with CLOSED, no crash', async () => {
  const { q } = clockedQueue()
  q.subscribe('g', 't')
  const w = q.worker('g', async () => {}, { waitMs: 20 })
  await new Promise((r) => setTimeout(r, 30))
  await q.close()
  await assert.rejects(w.done, { code: 'CLOSED' })
  assert.equal(w.running, false)
})

test('an unhandled handler failure never crashes a process', async () => {
  const db = tempDb()
  const code = `
    const { Queue } = require('ferrymq')
    const q = new Queue(process.argv[1])
    q.subscribe('g', 't')
    q.publish('t', 'x')
    const w = q.worker('g', async () => { throw new Error('handler failed') }, { waitMs: 10 })
    setTimeout(async () => {
      await w.stop()
      console.log(q.message(1).deliveries.g.lastError)
      await q.close()
    }, 300)`
  const out = await run(code, [db]).done
  assert.equal(out.code, 0, out.stderr)
  assert.equal(out.stdout.trim(), 'handler failed')
})

test('a thrown value that cannot become text still nacks, and the worker goes on', async () => {
  const { q } = clockedQueue()
  q.subscribe('g', 't', { retry: RetryPolicy.fixed([60_000]) })
  const bad = q.publish('t', 'bad')
  const good = q.publish('t', 'good')
  const w = q.worker('g', (d) => {
    if (d.payload.toString() === 'bad') throw Object.create(null) // String() of it throws
  }, { waitMs: 20 })
  await until(() => q.message(good).deliveries.g.state === 'acked' && q.message(bad).deliveries.g.state === 'scheduled')
  assert.equal(w.running, true)
  await w.stop()
  assert.match(q.message(bad).deliveries.g.lastError ?? '', /cannot be shown as text/)
})

test('worker leaves the event loop free: with waitMs 0, and while draining a backlog', async () => {
  const { q } = clockedQueue()
  q.subscribe('g', 't')
  const idle = q.worker('g', () => {}, { waitMs: 0 })
  await new Promise((r) => setTimeout(r, 50)) // a starved loop would never get here
  await idle.stop()
  q.publishBatch(Array.from({ length: 3000 }, (_, i) => ({ topic: 't', payload: String(i) })))
  let handled = 0
  const w = q.worker('g', () => {
    handled++
  }, { waitMs: 20 })
  const atTimer = await new Promise((r) => setTimeout(() => r(handled), 5))
  assert.ok(/** @type {number} */ (atTimer) < 3000, 'the timer fired only after the whole backlog')
  await until(() => handled === 3000)
  await w.stop()
})
