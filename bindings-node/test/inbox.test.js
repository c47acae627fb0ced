'use strict'
// The inbox (`tx.inbox(key, { windowMs })`): a key is new once per window and only if its
// transaction commits; and the done-when: 10,000 duplicate deliveries of 1,000
// keys, consumed by worker processes killed with SIGKILL at random, give exactly 1,000
// business rows. FERRYMQ_INBOX_KILLS sets how many kills (default 12).
const test = require('node:test')
const assert = require('node:assert/strict')
const path = require('node:path')
const { spawn } = require('node:child_process')
const { Queue, RetryPolicy, FerrymqError, inboxIn } = require('ferrymq')
const { tempDb, clockedQueue } = require('./helpers.js')

/**
 * @param {Queue} q
 * @param {string} key
 * @param {import('ferrymq').InboxOptions} [opts]
 */
const see = (q, key, opts) => q.transaction((tx) => tx.inbox(key, opts))

test('a key is new once per window, and only if its transaction commits', async () => {
  const { q, clock } = clockedQueue()
  assert.equal(see(q, 'alipay:1'), true)
  assert.equal(see(q, 'alipay:1'), false)
  assert.throws(() =>
    q.transaction((tx) => {
      assert.equal(tx.inbox('alipay:2'), true)
      throw new Error('the business write failed')
    }),
  )
  assert.equal(see(q, 'alipay:2'), true)
  assert.equal(see(q, 'w', { windowMs: 10_000 }), true)
  clock.advance(9_999)
  assert.equal(see(q, 'w', { windowMs: 10_000 }), false)
  clock.advance(1)
  assert.equal(see(q, 'w', { windowMs: 10_000 }), true)
  assert.equal(see(q, 'd'), true)
  clock.advance(7 * 86_400_000 - 1)
  assert.equal(see(q, 'd'), false)
  clock.advance(1)
  assert.equal(see(q, 'd'), true)
  await q.close()
})

test('bad input is INVALID_ARGUMENT and changes nothing', async () => {
  const q = new Queue(tempDb())
  /** @type {[any, any][]} */
  const cases = [
    ['', undefined],
    ['x'.repeat(1025), undefined],
    ['a\0b', undefined],
    [42, undefined],
    ['k', { windowMs: 0 }],
    ['k', { windowMs: 0.5 }],
    ['k', { windowMs: -1 }],
    ['k', { windowMs: NaN }],
    ['k', { window: 1000 }],
  ]
  q.transaction((tx) => {
    for (const [key, opts] of cases) {
      assert.throws(
        () => tx.inbox(key, opts),
        (e) => e instanceof FerrymqError && e.code === 'INVALID_ARGUMENT',
        JSON.stringify([key, opts]),
      )
    }
    assert.deepEqual(tx.query('SELECT count(*) FROM ferrymq_inbox'), [[0]])
  })
  await q.close()
})

/** @returns {any} node:sqlite (Node 22.5+), or undefined */
function nodeSqlite() {
  try {
    const name = 'node:sqlite'
    return require(name)
  } catch {
    return undefined
  }
}
const sqlite = nodeSqlite()

test(
  'inboxIn answers on the caller\'s node:sqlite connection, in its transaction',
  { skip: sqlite === undefined && `node:sqlite is not in Node ${process.version}: skipped` },
  async () => {
    const { q, clock, db: file } = clockedQueue()
    assert.equal(see(q, 'seen-by-tx'), true)
    const db = new sqlite.DatabaseSync(file)
    db.exec('CREATE TABLE paid (notify_id TEXT NOT NULL)')
    // Rolled back after the inbox said "new": the key is not seen.
    db.exec('BEGIN')
    assert.equal(inboxIn(db, 'n1', { queue: q }), true)
    db.exec("INSERT INTO paid VALUES ('n1')")
    db.exec('ROLLBACK')
    for (const expected of [true, false, false]) {
      db.exec('BEGIN')
      const isNew = inboxIn(db, 'n1', { windowMs: 60_000, queue: q })
      assert.equal(isNew, expected)
      if (isNew) db.exec("INSERT INTO paid VALUES ('n1')")
      db.exec('COMMIT')
    }
    db.exec('BEGIN')
    assert.equal(inboxIn(db, 'seen-by-tx', { queue: q }), false)
    db.exec('COMMIT')
    clock.advance(60_000)
    db.exec('BEGIN')
    assert.equal(inboxIn(db, 'n1', { queue: q }), true)
    for (const [key, opts] of /** @type {[any, any][]} */ ([['', {}], ['k', { windowMs: 0 }], ['k', { window: 1 }]])) {
      assert.throws(() => inboxIn(db, key, { ...opts, queue: q }), (e) => e instanceof FerrymqError && e.code === 'INVALID_ARGUMENT')
    }
    db.exec('COMMIT')
    assert.throws(
      () => inboxIn(db, 'k', { queue: q }),
      (e) => e instanceof FerrymqError && e.code === 'INVALID_ARGUMENT' && /no transaction/.test(e.message),
    )
    assert.equal(db.prepare('SELECT count(*) AS n FROM paid').get().n, 1)
    db.close()
    assert.equal(see(q, 'n1'), false)
    await q.close()
  },
)

const WORKER = `
  const { Queue, FerrymqError } = require('ferrymq')
  const q = new Queue(process.argv[1])
  ;(async () => {
    for (;;) {
      for (const d of await q.receive('g', { max: 8, waitMs: 500 })) {
        try {
          q.transaction((tx) => {
            if (tx.inbox(d.key)) tx.execute('INSERT INTO paid (notify_id) VALUES (?)', [d.key])
            tx.ack(d)
          })
        } catch (e) {
          // someone else holds it now: their transaction decides
          if (!(e instanceof FerrymqError && e.code === 'LEASE_LOST')) throw e
        }
      }
    }
  })()`

const KEYS = 1000
const COPIES = 10

/**
 * A small seeded generator, so that a failing run can be repeated.
 * @param {number} seed
 */
function rng(seed) {
  let s = seed >>> 0
  return () => {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0
    return s / 2 ** 32
  }
}

const sleep = (/** @type {number} */ ms) => new Promise((r) => setTimeout(r, ms))

/**
 * Publishes 1,000 keys 10 times each in random order, consumes them with three worker
 * processes while killing one at random every 20-300 ms (at most `killsLeft` times),
 * checks the business rows; returns how many kills it made.
 * @param {string} db
 * @param {() => number} rand
 * @param {number} killsLeft
 */
async function round(db, rand, killsLeft) {
  const copies = []
  for (let k = 0; k < KEYS; k++) for (let c = 0; c < COPIES; c++) copies.push(`notify-${String(k).padStart(4, '0')}`)
  for (let i = copies.length - 1; i > 0; i--) {
    const j = Math.floor(rand() * (i + 1))
    ;[copies[i], copies[j]] = [copies[j], copies[i]]
  }
  const q = new Queue(db)
  // A short lease brings a killed worker's deliveries back quickly; a message killed
  // often must not go dead, hence the generous retry count.
  q.subscribe('g', 'notify', { leaseMs: 1000, retry: RetryPolicy.fixed(new Array(1000).fill(0)) })
  q.transaction((tx) => tx.execute('CREATE TABLE paid (id INTEGER PRIMARY KEY, notify_id TEXT NOT NULL)'))
  for (let at = 0; at < copies.length; at += 1000) {
    q.publishBatch(copies.slice(at, at + 1000).map((key) => ({ topic: 'notify', payload: 'paid', key })))
  }
  const start = () =>
    spawn(process.execPath, ['-e', WORKER, '--', db], { cwd: path.join(__dirname, '..'), stdio: 'inherit' })
  /** @param {import('node:child_process').ChildProcess} child */
  const exited = (child) =>
    child.exitCode !== null || child.signalCode !== null
      ? Promise.resolve()
      : new Promise((r) => child.once('exit', r))
  const workers = [start(), start(), start()]
  let kills = 0
  const deadline = Date.now() + 300_000
  try {
    for (;;) {
      const g = q.stats().groups.g
      assert.ok(Date.now() < deadline, `not drained after ${kills} kills: ${JSON.stringify(g)}`)
      if (g.ready + g.inflight + g.retrying + g.scheduled === 0) break
      await sleep(20 + rand() * 280)
      if (kills < killsLeft) {
        const i = Math.floor(rand() * workers.length)
        workers[i].kill('SIGKILL')
        await exited(workers[i])
        kills++
        workers[i] = start()
      }
      for (const w of workers) assert.equal(w.exitCode, null, 'a worker exited on its own')
    }
  } finally {
    for (const w of workers) {
      w.kill('SIGKILL')
      await exited(w)
    }
  }
  assert.equal(q.stats().groups.g.dead, 0)
  const { rows, seen } = q.transaction((tx) => ({
    rows: tx.query('SELECT notify_id FROM paid ORDER BY notify_id').map((r) => r[0]),
    seen: tx.query('SELECT count(*) FROM ferrymq_inbox'),
  }))
  await q.close()
  assert.equal(rows.length, KEYS, `${rows.length} business rows for ${KEYS} keys after ${kills} kills`)
  assert.deepEqual(
    rows,
    Array.from({ length: KEYS }, (_, k) => `notify-${String(k).padStart(4, '0')}`),
  )
  assert.deepEqual(seen, [[KEYS]])
  return kills
}

test('10,000 duplicate deliveries of 1,000 keys across SIGKILLs give 1,000 business rows', async () => {
  // Rounds of 10,000 deliveries on fresh files until the wanted number of kills is made.
  const wanted = Number(process.env.FERRYMQ_INBOX_KILLS ?? 12)
  const rand = rng(17)
  let kills = 0
  let rounds = 0
  while (kills < wanted) {
    kills += await round(tempDb(`round-${rounds}.db`), rand, wanted - kills)
    rounds++
  }
  console.log(`inbox: ${rounds} rounds of ${KEYS * COPIES} deliveries, ${kills} SIGKILLs, ${KEYS} rows each`)
})
