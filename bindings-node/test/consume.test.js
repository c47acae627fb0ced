'use strict'
// consume and worker drive the core's consumer: it renews the lease of a delivery while
// its handler runs, and leaving the loop puts back what it holds.
const test = require('node:test')
const assert = require('node:assert/strict')
const { Queue } = require('ferrymq')
const { tempDb } = require('./helpers.js')

/** @param {number} ms */
const sleep = (ms) => new Promise((r) => setTimeout(r, ms))

test('a worker handler slower than the lease keeps its message', async () => {
  const q = new Queue(tempDb())
  q.subscribe('g', 't', { leaseMs: 200 })
  q.publish('t', 'slow')
  /** @type {[number, number][]} */
  const seen = []
  const w = q.worker('g', async (d) => {
    await sleep(800) // four leases: only the heartbeat keeps the message ours
    seen.push([d.attempt, (await q.receive('g')).length])
  }, { waitMs: 50 })
  while (seen.length === 0) await sleep(20)
  await w.stop()
  assert.deepEqual(seen, [[1, 0]], 'not redelivered to a second consumer')
  assert.equal(q.stats().groups.g.inflight, 0)
  await q.close()
})

test('a slow for-await body keeps its lease; break puts the delivery back at once', async () => {
  const q = new Queue(tempDb())
  q.subscribe('g', 't', { leaseMs: 200 })
  q.publish('t', 'slow')
  for await (const d of q.consume('g', { waitMs: 50 })) {
    await sleep(800)
    assert.deepEqual(await q.receive('g'), [], 'redelivered while the body ran')
    d.ack()
    break
  }
  q.subscribe('h', 'u') // a 30 s lease: only the put-back makes the message ready now
  q.publish('u', 'a')
  for await (const d of q.consume('h')) {
    assert.equal(d.attempt, 1)
    break
  }
  const [again] = await q.receive('h')
  assert.equal(again?.attempt, 1, 'a put-back counts no attempt')
  await q.close()
})
