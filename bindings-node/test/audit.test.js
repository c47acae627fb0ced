'use strict'
// The audit trail through the binding: withReason gives a queue of the same class on the
// same open file, and audit() lists what an operator did with the reason, process and
// user the core recorded.
const test = require('node:test')
const assert = require('node:assert/strict')
const { Queue, FerrymqError } = require('ferrymq')
const { tempDb } = require('./helpers.js')

/** @param {string} code */
const is = (code) => (/** @type {any} */ e) => e instanceof FerrymqError && e.code === code

test('withReason, pause and audit: the record has the reason, pid and user', async () => {
  const q = new Queue(tempDb())
  q.subscribe('g', 't')
  const ops = q.withReason('incident 42')
  assert.ok(ops instanceof Queue)
  ops.pause('g')
  q.resume('g')

  const records = q.audit()
  assert.deepEqual(records.map((r) => [r.action, r.target, r.reason]), [
    ['pause', 'g', 'incident 42'],
    ['resume', 'g', null],
  ])
  const [first, second] = records
  assert.equal(first.pid, process.pid)
  assert.ok(first.user.length > 0 && first.host.length > 0 && first.process.length > 0)
  assert.ok(first.at instanceof Date && Math.abs(first.at.getTime() - Date.now()) < 300_000)
  assert.deepEqual(JSON.parse(first.detail ?? ''), { changed: true })
  assert.deepEqual(q.audit({ after: first.id, limit: 10 }).map((r) => r.id), [second.id])

  // One open queue: closing the handle closes the original.
  await ops.close()
  assert.throws(() => q.stats(), is('CLOSED'))
})

test('bad reasons and limits are INVALID_ARGUMENT', async () => {
  const q = new Queue(tempDb())
  for (const bad of ['', '   ', 'a\0b', 'x'.repeat(1001), /** @type {any} */ (7)]) {
    assert.throws(() => q.withReason(bad), is('INVALID_ARGUMENT'))
  }
  for (const limit of [0, 10_001, 1.5]) {
    assert.throws(() => q.audit({ limit }), is('INVALID_ARGUMENT'))
  }
  assert.throws(() => q.audit(/** @type {any} */ ({ from: 1 })), is('INVALID_ARGUMENT'))
  assert.deepEqual(q.audit(), [])
  await q.close()
})
