'use strict'
// Encryption at rest through the real addon: the key forms, what reaches the disk, every
// wrong way of opening a file (ENCRYPTION, the bytes untouched), key providers that fail,
// and a provider following another handle's rekey on both of its thread paths (the JS
// thread during a sync call, a worker thread during an async one).
const test = require('node:test')
const assert = require('node:assert/strict')
const fs = require('node:fs')
const { Queue, FerrymqError } = require('ferrymq')
const { tempDb } = require('./helpers.js')

const PAYLOAD = 'IBAN-DE89370400440532013000-amount-4711.00'
const PASSPHRASE = 'correct horse battery staple'
const RAW = Buffer.from('00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff', 'hex')

/** @param {string} code */
const is = (code) => (/** @type {any} */ e) => e instanceof FerrymqError && e.code === code

/** @param {string} code @param {RegExp} text */
const isWith = (code, text) => (/** @type {any} */ e) => is(code)(e) && text.test(e.message)

/** The file, its -wal and -shm as they are on disk (null where absent). @param {string} db */
function onDisk(db) {
  return ['', '-wal', '-shm'].map((s) => (fs.existsSync(db + s) ? fs.readFileSync(db + s) : null))
}

/** A closed encrypted queue file holding one message. @param {import('ferrymq').QueueOptions['key']} key */
async function encryptedFile(key) {
  const db = tempDb()
  const q = new Queue(db, { key })
  q.subscribe('g', 't')
  q.publish('t', PAYLOAD)
  await q.close()
  return db
}

/** @param {Queue} q */
async function receiveOne(q) {
  const [d] = await q.receive('g', { waitMs: 0 })
  assert.ok(d, 'a delivery')
  d.ack()
  return d.payload.toString()
}

test('an encrypted queue round-trips with a passphrase, a raw Buffer and x-hex text', async () => {
  for (const [key, again] of [
    [PASSPHRASE, PASSPHRASE],
    [RAW, `x'${RAW.toString('hex')}'`],
    [new Uint8Array(RAW), RAW],
  ]) {
    const db = await encryptedFile(key)
    const q = new Queue(db, { key: again })
    assert.equal(await receiveOne(q), PAYLOAD)
    await q.close()
  }
})

test('the file and its -wal hold no plaintext payload, passphrase or SQLite header', async () => {
  const db = tempDb()
  const q = new Queue(db, { key: PASSPHRASE })
  q.subscribe('g', 't')
  for (let i = 0; i < 50; i++) q.publish('t', `${PAYLOAD}-${i}`, { key: `order-${i}` })
  const [file, wal] = onDisk(db)
  assert.ok(file && wal && wal.length > 0, 'the pages are in the -wal before a checkpoint')
  for (const bytes of [file, wal]) {
    for (const needle of [PAYLOAD, PASSPHRASE, 'order-7', 'ferrymq_messages', 'SQLite format 3']) {
      assert.equal(bytes.includes(needle), false, needle)
    }
  }
  await q.close()
  const [closed] = onDisk(db)
  assert.ok(closed)
  assert.equal(closed.includes(PAYLOAD), false)
})

test('a wrong key, no key, or a key for a plain file: ENCRYPTION, and the bytes stay as they were', async () => {
  const db = await encryptedFile(PASSPHRASE)
  const before = onDisk(db)
  assert.throws(() => new Queue(db, { key: 'not the passphrase' }), isWith('ENCRYPTION', /wrong key/))
  assert.throws(() => new Queue(db, { key: RAW }), is('ENCRYPTION'))
  assert.throws(() => new Queue(db), isWith('ENCRYPTION', /is encrypted/))
  assert.deepEqual(onDisk(db), before)

  const plain = tempDb()
  const p = new Queue(plain)
  p.publish('t', PAYLOAD)
  await p.close()
  const plainBefore = onDisk(plain)
  assert.throws(() => new Queue(plain, { key: PASSPHRASE }), isWith('ENCRYPTION', /plain/))
  assert.deepEqual(onDisk(plain), plainBefore)
})

test('no error text shows the key', async () => {
  const db = await encryptedFile(PASSPHRASE)
  for (const key of ['a secret that is wrong', () => ['a secret that is wrong']]) {
    assert.throws(
      () => new Queue(db, { key }),
      (/** @type {any} */ e) => is('ENCRYPTION')(e) && !e.message.includes('secret') && !String(e.stack).includes('secret'),
    )
  }
})

test('a malformed key is INVALID_ARGUMENT and creates nothing', async () => {
  const db = tempDb()
  assert.throws(() => new Queue(db, { key: Buffer.alloc(31) }), isWith('INVALID_ARGUMENT', /32 bytes/))
  assert.throws(() => new Queue(db, { key: '' }), is('INVALID_ARGUMENT'))
  assert.throws(() => new Queue(db, { key: "x'abcd'" }), isWith('INVALID_ARGUMENT', /hex digits/))
  assert.throws(() => new Queue(db, { key: /** @type {any} */ (42) }), isWith('INVALID_ARGUMENT', /key must be/))
  assert.equal(fs.existsSync(db), false)
  const q = new Queue(tempDb(), { key: PASSPHRASE })
  await assert.rejects(q.rekey(Buffer.alloc(5)), isWith('INVALID_ARGUMENT', /32 bytes/))
  await assert.rejects(q.rekey(/** @type {any} */ (undefined)), is('INVALID_ARGUMENT'))
  await q.close()
})

test('rekey: the new key opens the file, the old one no longer does; a plain file is refused', async () => {
  const db = await encryptedFile(PASSPHRASE)
  const q = new Queue(db, { key: PASSPHRASE })
  await q.rekey(RAW)
  q.publish('t', 'after')
  await q.close()
  assert.throws(() => new Queue(db, { key: PASSPHRASE }), is('ENCRYPTION'))
  const again = new Queue(db, { key: RAW })
  assert.equal(await receiveOne(again), PAYLOAD)
  assert.equal(await receiveOne(again), 'after')
  await assert.rejects(new Queue(tempDb()).rekey(RAW), isWith('INVALID_ARGUMENT', /not encrypted/))
  await again.close()
})

test('a throwing, a wrong-typed or an async provider: ENCRYPTION naming why, the process alive', async () => {
  const db = await encryptedFile(PASSPHRASE)
  const providers = [
    [() => { throw new Error('the vault is sealed') }, /the key provider failed: it threw: the vault is sealed/],
    [() => 42, /it returned number/],
    [() => [PASSPHRASE, { k: 1 }], /key 1 of its list is Object/],
    [async () => PASSPHRASE, /must be synchronous/],
    [() => [], /no key/],
    [() => [Buffer.alloc(3)], /key 0 of the list: .*32 bytes/],
  ]
  for (const [provider, text] of providers) {
    assert.throws(() => new Queue(db, { key: /** @type {any} */ (provider) }), isWith('ENCRYPTION', /** @type {RegExp} */ (text)))
  }
  const q = new Queue(db, { key: () => PASSPHRASE })
  assert.equal(await receiveOne(q), PAYLOAD)
  await q.close()
})

test('a provider listing [new, old] follows another handle rekey, in a sync call and in an async call', async () => {
  const db = await encryptedFile('key one')
  /** @type {string[]} */
  let keys = ['key one']
  let calls = 0
  const follower = new Queue(db, {
    key: () => {
      calls++
      return keys
    },
  })
  const rotator = new Queue(db, { key: 'key one' })
  assert.equal(calls, 1, 'asked once at open')

  // A sync call: the follower's key check fails on the JS thread, which asks the provider itself.
  keys = ['key two', 'key one']
  await rotator.rekey('key two')
  follower.publish('t', 'sync')
  assert.ok(calls >= 2, `asked again on the JS thread (${calls} calls)`)

  // An async call: the check fails on a worker thread, which asks through the JS thread.
  const before = calls
  keys = ['key three', 'key two']
  await rotator.rekey('key three')
  await follower.publishAsync('t', 'async')
  assert.ok(calls > before, `asked again from a worker thread (${calls} calls)`)
  assert.deepEqual(
    (await follower.receive('g', { max: 10, waitMs: 0 })).map((d) => d.payload.toString()),
    [PAYLOAD, 'sync', 'async'],
  )

  // A provider that has not heard of the newest key: ENCRYPTION on both paths.
  keys = ['key three']
  await rotator.rekey('key four')
  assert.throws(() => follower.publish('t', 'x'), isWith('ENCRYPTION', /rekeyed/))
  await assert.rejects(follower.publishAsync('t', 'x'), isWith('ENCRYPTION', /rekeyed/))
  keys = ['key four']
  follower.publish('t', 'recovered')
  await rotator.close()
  await follower.close()
})

test('a provider that throws on a worker thread rejects the async call with ENCRYPTION', async () => {
  const db = await encryptedFile('key one')
  let sealed = false
  const q = new Queue(db, {
    key: () => {
      if (sealed) throw new Error('the vault is sealed')
      return 'key one'
    },
  })
  const rotator = new Queue(db, { key: 'key one' })
  await rotator.rekey('key two')
  sealed = true
  await assert.rejects(q.publishAsync('t', 'x'), isWith('ENCRYPTION', /it threw: the vault is sealed/))
  sealed = false
  await assert.rejects(q.publishAsync('t', 'x'), isWith('ENCRYPTION', /rekeyed/))
  await rotator.close()
  await q.close()
})

test('publishIn, ackIn and inboxIn run on a better-sqlite3-multiple-ciphers connection in SQLCipher mode', async () => {
  const Database = require('better-sqlite3')
  const CipherDatabase = require('better-sqlite3-multiple-ciphers')
  const { publishIn, ackIn, inboxIn } = require('ferrymq')
  const db = await encryptedFile(PASSPHRASE)
  const q = new Queue(db, { key: PASSPHRASE })

  // Plain better-sqlite3 reads the encrypted file as "not a database".
  const plain = new Database(db)
  assert.throws(() => plain.prepare('SELECT count(*) FROM sqlite_master').get(), /not a database/)
  plain.close()

  const conn = new CipherDatabase(db)
  conn.pragma("cipher = 'sqlcipher'")
  conn.pragma('legacy = 4')
  conn.pragma(`key = '${PASSPHRASE}'`)
  conn.exec('CREATE TABLE orders (id TEXT PRIMARY KEY)')
  conn.transaction(() => {
    conn.prepare('INSERT INTO orders VALUES (?)').run('o-1')
    publishIn(conn, 't', 'from the caller', { queue: q })
    assert.equal(inboxIn(conn, 'o-1', { queue: q }), true)
  })()
  const ds = await q.receive('g', { max: 10, waitMs: 0 })
  assert.deepEqual(ds.map((d) => d.payload.toString()), [PAYLOAD, 'from the caller'])
  conn.transaction(() => {
    for (const d of ds) ackIn(conn, d, { queue: q })
  })()
  conn.close()
  assert.equal(q.stats().groups.g.inflight, 0)
  assert.equal(q.stats().groups.g.ready, 0)
  await q.close()
  const [file, wal] = onDisk(db)
  for (const bytes of [file, wal]) assert.equal(bytes?.includes('from the caller') ?? false, false)
})
