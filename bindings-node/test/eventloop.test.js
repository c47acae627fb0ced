'use strict'
// Waiting never blocks the event loop, and an AbortSignal ends a wait at once.
const test = require('node:test')
const assert = require('node:assert/strict')
const { Queue } = require('ferrymq')
const { tempDb } = require('./helpers.js')

test('timers keep firing while a receive waits', async () => {
  const q = new Queue(tempDb())
  q.subscribe('g', 't')
  let ticks = 0
  const timer = setInterval(() => ticks++, 10)
  const started = Date.now()
  const ds = await q.receive('g', { waitMs: 500 })
  clearInterval(timer)
  assert.deepEqual(ds, [])
  assert.ok(Date.now() - started >= 450, 'the receive waited')
  assert.ok(ticks >= 20, `only ${ticks} timer ticks during a 500 ms wait`)
  await q.close()
})

test('a publish from a timer wakes a waiting receive', async () => {
  const q = new Queue(tempDb())
  q.subscribe('g', 't')
  setTimeout(() => q.publish('t', 'wake'), 50)
  const started = Date.now()
  const [d] = await q.receive('g', { waitMs: 10_000 })
  assert.equal(d.payload.toString(), 'wake')
  assert.ok(Date.now() - started < 5000)
  await q.close()
})

test('an AbortSignal ends a waiting receive promptly with its reason', async () => {
  const q = new Queue(tempDb())
  q.subscribe('g', 't')
  const abort = new AbortController()
  setTimeout(() => abort.abort(), 50)
  const started = Date.now()
  await assert.rejects(q.receive('g', { waitMs: 60_000, signal: abort.signal }), { name: 'AbortError' })
  assert.ok(Date.now() - started < 5000)
  await assert.rejects(q.receive('g', { signal: abort.signal }), { name: 'AbortError' })
  q.publish('t', 'still there')
  const [d] = await q.receive('g')
  assert.equal(d.payload.toString(), 'still there', 'the aborted receive claimed nothing')
  await q.close()
})

test('close while a receive waits ends it', async () => {
  const q = new Queue(tempDb())
  q.subscribe('g', 't')
  const pending = q.receive('g', { waitMs: 60_000 })
  await new Promise((r) => setTimeout(r, 30))
  const started = Date.now()
  await q.close()
  const outcome = await pending.then(
    (ds) => ds.length,
    (e) => e.code,
  )
  const took = Date.now() - started
  assert.ok(outcome === 0 || outcome === 'CLOSED', `the waiting receive ended with ${outcome}`)
  assert.ok(took < 5000, `close and the receive took ${took} ms`)
})
