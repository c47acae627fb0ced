'use strict'
// Open options that reach SQLite (foreignKeys) and vacuum, which gives the pages purges
// freed back to the file system. Both pass straight through to the core.
const test = require('node:test')
const assert = require('node:assert/strict')
const fs = require('node:fs')
const { FerrymqError } = require('ferrymq')
const { clockedQueue } = require('./helpers.js')

const is = (/** @type {string} */ code) => (/** @type {any} */ e) => e instanceof FerrymqError && e.code === code

/** @param {import('ferrymq').Queue} q */
function insertOrderOfUnknownCustomer(q) {
  q.transaction((tx) => {
    tx.execute('CREATE TABLE IF NOT EXISTS customers (id INTEGER PRIMARY KEY)')
    tx.execute('CREATE TABLE IF NOT EXISTS orders (id INTEGER PRIMARY KEY, customer INTEGER NOT NULL REFERENCES customers (id))')
  })
  q.transaction((tx) => tx.execute('INSERT INTO orders VALUES (1, 99)'))
}

test('foreignKeys: on and left out enforce FOREIGN KEY clauses in tx.execute, off does not', async () => {
  for (const [foreignKeys, enforced] of /** @type {const} */ ([[true, true], [false, false], [undefined, true], [null, true]])) {
    const { q } = clockedQueue({ foreignKeys })
    if (enforced) {
      assert.throws(() => insertOrderOfUnknownCustomer(q), (/** @type {any} */ e) => is('INVALID_ARGUMENT')(e) && /FOREIGN KEY/.test(e.message))
    } else {
      insertOrderOfUnknownCustomer(q)
    }
    await q.close()
  }
  assert.throws(() => clockedQueue({ foreignKeys: /** @type {any} */ ('yes') }), is('INVALID_ARGUMENT'))
})

test('vacuum frees the pages a purge left and the file shrinks', async () => {
  const { q, clock, db } = clockedQueue()
  q.subscribe('g', 't')
  q.publishBatch(Array.from({ length: 50 }, () => ({ topic: 't', payload: Buffer.alloc(100_000) })))
  for (let ds = await q.receive('g', { max: 100 }); ds.length > 0; ds = await q.receive('g', { max: 100 })) {
    for (const d of ds) d.ack()
  }
  clock.advance(1000)
  assert.equal(await q.purgeAcked({ olderThanMs: 0 }), 49)
  const before = fs.statSync(db).size
  assert.equal(await q.vacuum({ pages: 5 }), 5)
  assert.ok((await q.vacuum()) > 1000)
  assert.ok(fs.statSync(db).size < before - 4_000_000, `${before} -> ${fs.statSync(db).size}`)
  assert.equal(await q.vacuum({}), 0)
  await assert.rejects(q.vacuum({ pages: 0 }), is('INVALID_ARGUMENT'))
  await q.close()
})
