'use strict'
// The Queue class forwards the native methods it does not write out: each is there, under
// the name index.d.ts declares, and its errors are FerrymqErrors (thrown, or rejected by a
// Promise-returning call).
const test = require('node:test')
const assert = require('node:assert/strict')
const fs = require('node:fs')
const path = require('node:path')
const { Queue, FerrymqError } = require('ferrymq')
// A computed path: tsc checks the tests, not the loader.
const native = require(path.join(__dirname, '..', 'native.js'))
const { tempDb } = require('./helpers.js')

const PLUMBING = ['constructor', 'receiveNow', 'consumer', 'begin', 'answerCheck']

test('every native queue method but the plumbing is a Queue method', () => {
  for (const name of Object.getOwnPropertyNames(native.NativeQueue.prototype)) {
    if (PLUMBING.includes(name)) {
      assert.equal(name in Queue.prototype && name !== 'constructor', false, `${name} is plumbing`)
      continue
    }
    assert.ok(name in Queue.prototype, `Queue lacks ${name}`)
  }
})

test('every method index.d.ts declares on Queue exists', () => {
  const dts = fs.readFileSync(path.join(__dirname, '..', 'index.d.ts'), 'utf8')
  const body = dts.slice(dts.indexOf('export declare class Queue {'))
  const cls = body.slice(0, body.indexOf('\n}\n'))
  const names = [...cls.matchAll(/^ {2}(?:readonly )?(\w+)[(<:]/gm)].map((m) => m[1])
  assert.ok(names.length > 30, `read ${names.length} members`)
  for (const name of names) assert.ok(name in Queue.prototype, `Queue lacks ${name}`)
})

test('a forwarded call on a closed queue throws CLOSED, or rejects with it', async () => {
  const q = new Queue(tempDb())
  await q.close()
  /** @param {unknown} e */
  const closed = (e) => e instanceof FerrymqError && e.code === 'CLOSED'
  for (const call of [() => q.stats(), () => q.topics(), () => q.metrics(), () => q.schedules(), () => q.pause('g')]) {
    assert.throws(call, closed)
  }
  for (const call of [() => q.runChecks(), () => q.purgeAcked(), () => q.vacuum({ pages: 1 })]) {
    await assert.rejects(call(), closed)
  }
  await assert.rejects(q.vacuum(/** @type {any} */ ({ page: 1 })), (e) => e instanceof FerrymqError && e.code === 'INVALID_ARGUMENT')
  assert.throws(() => q.audit(/** @type {any} */ ({ limt: 1 })), /unknown option "limt" for audit options/)
  assert.throws(() => q.deadLetters('g', { limit: 1.5 }), (e) => e instanceof FerrymqError)
})
