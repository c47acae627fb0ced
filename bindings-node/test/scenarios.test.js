'use strict'
// The Node runner of the shared scenarios in tests/scenarios/*.json (format in that
// folder's README). The Rust, Python and Kotlin runners execute the same files. Each runs
// twice: on a plain file, and on one encrypted with PASSPHRASE, where the steps on the
// caller's own connection use better-sqlite3-multiple-ciphers in SQLCipher mode (plain
// better-sqlite3 cannot read an encrypted file).
const test = require('node:test')
const assert = require('node:assert/strict')
const fs = require('node:fs')
const path = require('node:path')
const Database = require('better-sqlite3')
const CipherDatabase = require('better-sqlite3-multiple-ciphers')
const { Queue, RetryPolicy, FerrymqError, publishIn, ackIn } = require('ferrymq')
const { ManualClock } = require('ferrymq/testing')
const { tempDb, START_MS } = require('./helpers.js')

const DIR = path.join(__dirname, '..', '..', 'tests', 'scenarios')
const PASSPHRASE = 'scenario passphrase'

/** @typedef {Record<string, any>} Step */

/** @param {Step} s */
function publishOptions(s) {
  /** @type {import('ferrymq').PublishOptions} */
  const o = {}
  if (s.tag !== undefined) o.tag = s.tag
  if (s.key !== undefined) o.key = s.key
  if (s.headers !== undefined) o.headers = s.headers
  if (s.ordering_key !== undefined) o.orderingKey = s.ordering_key
  if (s.idempotency_key !== undefined) o.idempotencyKey = s.idempotency_key
  if (s.delay_ms !== undefined) o.delayMs = s.delay_ms
  if (s.deliver_at_offset_ms !== undefined) o.deliverAt = new Date(START_MS + s.deliver_at_offset_ms)
  if (s.priority !== undefined) o.priority = s.priority
  return o
}

/** @param {Step} r */
function retry(r) {
  switch (r.policy) {
    case 'rocketmq':
      return RetryPolicy.rocketmq()
    case 'alipay':
      return RetryPolicy.alipay()
    case 'wechat_pay':
      return RetryPolicy.wechatPay()
    case 'fixed':
      return RetryPolicy.fixed(r.delays_ms)
    default:
      throw new Error(`unknown retry policy ${r.policy}`)
  }
}

/** @param {import('ferrymq').Delivery} d */
function deliveryJson(d) {
  return {
    message_id: d.messageId,
    topic: d.topic,
    payload: d.payload.toString(),
    tag: d.tag,
    key: d.key,
    headers: d.headers,
    ordering_key: d.orderingKey,
    attempt: d.attempt,
    priority: d.priority,
  }
}

/** Every field of `expected` equals the same field of `actual`; lists compare exactly. */
function checkSubset(/** @type {any} */ expected, /** @type {any} */ actual, /** @type {string} */ at) {
  if (Array.isArray(expected)) {
    assert.ok(Array.isArray(actual), `${at}: expected a list, got ${JSON.stringify(actual)}`)
    assert.equal(actual.length, expected.length, `${at}: expected ${JSON.stringify(expected)}, got ${JSON.stringify(actual)}`)
    expected.forEach((e, i) => checkSubset(e, actual[i], `${at}[${i}]`))
  } else if (expected !== null && typeof expected === 'object') {
    for (const [k, v] of Object.entries(expected)) checkSubset(v, actual?.[k] ?? null, `${at}.${k}`)
  } else {
    assert.deepEqual(actual, expected, at)
  }
}

class Runner {
  /** @param {Step} queue @param {string} [key] the file's passphrase; none: a plain file */
  constructor(queue, key) {
    this.clock = new ManualClock(START_MS)
    this.db = tempDb()
    this.key = key
    this.q = new Queue(this.db, {
      key,
      testClock: this.clock,
      checkAfterMs: queue.check_after_ms,
      checkIntervalMs: queue.check_interval_ms,
      checkMax: queue.check_max,
      maxReady: queue.max_ready,
    })
    /** @type {Map<string, number>} */
    this.ids = new Map()
    /** @type {Map<string, import('ferrymq').Delivery>} */
    this.deliveries = new Map()
    /** @type {Map<number, import('ferrymq').HalfMessage>} */
    this.halves = new Map()
  }

  /** @param {any} v */
  id(v) {
    if (typeof v === 'string') {
      const id = this.ids.get(v.slice(1))
      assert.ok(v.startsWith('$') && id !== undefined, `no id saved as ${v}`)
      return id
    }
    return v
  }

  /** @param {any} v @returns {any} */
  resolve(v) {
    if (typeof v === 'string' && v.startsWith('$')) return this.id(v)
    if (Array.isArray(v)) return v.map((x) => this.resolve(x))
    if (v !== null && typeof v === 'object') {
      return Object.fromEntries(Object.entries(v).map(([k, x]) => [k, this.resolve(x)]))
    }
    return v
  }

  /** @param {string} name */
  delivery(name) {
    const d = this.deliveries.get(name)
    assert.ok(d, `no delivery saved as ${name}`)
    return d
  }

  /** @param {Step} s @returns {Promise<any>} */
  async step(s) {
    const q = this.q
    switch (s.op) {
      case 'subscribe':
        return void q.subscribe(s.group, s.topic, {
          tags: s.tags,
          leaseMs: s.lease_ms,
          maxInflight: s.max_inflight,
          rate: s.rate,
          burst: s.burst,
          retry: s.retry === undefined ? undefined : retry(s.retry),
        })
      case 'schedule': {
        /** @type {Record<string, any>} */
        const o = {}
        for (const [from, to] of [['cron', 'cron'], ['every_ms', 'everyMs'], ['tz', 'tz'], ['repeat', 'repeat'],
          ['delay_ms', 'delayMs'], ['tag', 'tag'], ['key', 'key'], ['headers', 'headers'], ['missed', 'missed']]) {
          if (s[from] !== undefined) o[to] = s[from]
        }
        if (s.start_at_offset_ms !== undefined) o.startAt = new Date(START_MS + s.start_at_offset_ms)
        return void q.schedule(s.name, s.topic, s.payload, o)
      }
      case 'unschedule':
        return void q.unschedule(s.name)
      case 'schedules':
        return q.schedules().map((x) => ({
          name: x.name,
          topic: x.topic,
          cron: x.cron,
          every_ms: x.every,
          tz: x.tz,
          next_at_offset_ms: x.nextAt.getTime() - START_MS,
          fired: x.fired,
          repeat_left: x.repeatLeft,
          missed: x.missed,
        }))
      case 'pause':
        return void q.pause(s.group)
      case 'resume':
        return void q.resume(s.group)
      case 'publish': {
        const id = q.publish(s.topic, s.payload, publishOptions(s))
        if (s.as !== undefined) this.ids.set(s.as, id)
        if (s.expect_id !== undefined) assert.equal(id, this.id(s.expect_id), 'expect_id')
        return undefined
      }
      case 'publish_batch': {
        const ids = q.publishBatch(s.messages.map((/** @type {Step} */ m) => ({ topic: m.topic, payload: m.payload, ...publishOptions(m) })))
        ;(s.as ?? []).forEach((/** @type {string} */ n, /** @type {number} */ i) => this.ids.set(n, ids[i]))
        return undefined
      }
      case 'receive': {
        const ds = await q.receive(s.group, { max: s.max ?? 1, leaseMs: s.lease_ms })
        const names = s.as ?? []
        assert.ok(names.length <= ds.length, 'fewer deliveries than names')
        names.forEach((/** @type {string} */ n, /** @type {number} */ i) => this.deliveries.set(n, ds[i]))
        return ds.map(deliveryJson)
      }
      case 'ack':
        return void this.delivery(s.delivery).ack()
      case 'nack':
        return void this.delivery(s.delivery).nack(s.reason ?? '', { delayMs: s.delay_ms })
      case 'extend':
        return void this.delivery(s.delivery).extend(s.lease_ms)
      case 'advance':
        return void this.clock.advance(s.ms)
      case 'stats':
        return q.stats()
      case 'message': {
        const m = q.message(this.id(s.id))
        /** @type {Record<string, any>} */
        const deliveries = {}
        for (const [g, d] of Object.entries(m.deliveries)) {
          deliveries[g] = { state: d.state, attempts: d.attempts, last_error: d.lastError }
        }
        return { state: m.state, tag: m.tag, key: m.key, payload: m.payload.toString(), deliveries }
      }
      case 'find':
        return q.find(s.topic, s.key).map((m) => m.id)
      case 'dead_letters':
        return q
          .deadLetters(s.group, { limit: 1000 })
          .map((d) => ({ message_id: d.messageId, attempts: d.attempts, last_error: d.lastError }))
      case 'redrive':
        return q.redrive(s.group, s.ids === undefined ? undefined : { ids: s.ids.map((/** @type {any} */ x) => this.id(x)) })
      case 'purge_dead_letters':
        return q.purgeDeadLetters(s.group)
      case 'transaction':
        return void this.transaction(s)
      case 'query':
        return q.transaction((tx) => tx.query(s.sql, s.params))
      case 'publish_in':
        return this.onConnection(s, (db) => {
          const id = publishIn(db, s.topic, s.payload, { ...publishOptions(s), queue: q })
          if (s.as !== undefined) this.ids.set(s.as, id)
          if (s.expect_id !== undefined) assert.equal(id, this.id(s.expect_id), 'expect_id')
        })
      case 'ack_in':
        return this.onConnection(s, (db) => ackIn(db, this.delivery(s.delivery), { queue: q }))
      case 'prepare': {
        const h = q.prepare(s.topic, s.payload, publishOptions(s))
        this.ids.set(s.as, h.id)
        return void this.halves.set(h.id, h)
      }
      case 'commit_half':
      case 'rollback_half': {
        const id = this.id(s.id)
        const h = this.halves.get(id)
        assert.ok(h, `no half message ${id}`)
        return void (s.op === 'commit_half' ? h.commit() : h.rollback())
      }
      case 'set_checker':
        return void q.setChecker(s.topic, async (info) => {
          const answer = s.answers[info.key ?? '']
          if (answer === 'throw' || answer === undefined) throw new Error('the checker failed')
          return answer
        })
      case 'run_checks':
        return await q.runChecks()
      case 'half_messages':
        return q.halfMessages({ state: s.state, limit: 1000 }).map((m) => m.id)
      case 'close':
        return void (await q.close())
      case 'open_foreign': {
        const file = path.join(path.dirname(this.db), 'notes.txt')
        fs.writeFileSync(file, 'not a database '.repeat(100))
        return void new Queue(file)
      }
      default:
        throw new Error(`unknown op ${s.op}`)
    }
  }

  /** The caller's own connection to the queue's file, keyed as SQLCipher keys it. */
  connect() {
    if (this.key === undefined) return new Database(this.db)
    const db = new CipherDatabase(this.db)
    db.pragma("cipher = 'sqlcipher'")
    db.pragma('legacy = 4')
    db.pragma(`key = '${this.key}'`)
    return db
  }

  /**
   * On a better-sqlite3 connection to the queue's file, opened for the step: BEGIN, the
   * step's `execute` statements, `f`, then COMMIT, or ROLLBACK when the step says so or
   * fails, and close.
   * @param {Step} s
   * @param {(db: import('better-sqlite3').Database | import('better-sqlite3-multiple-ciphers').Database) => void} f
   */
  onConnection(s, f) {
    const db = this.connect()
    try {
      db.exec('BEGIN')
      try {
        for (const e of s.execute ?? []) db.prepare(e.sql).run(...(e.params ?? []))
        f(db)
      } catch (e) {
        db.exec('ROLLBACK')
        throw e
      }
      db.exec(s.rollback ? 'ROLLBACK' : 'COMMIT')
    } finally {
      db.close()
    }
  }

  /** @param {Step} s */
  transaction(s) {
    const failure = new Error("the scenario's callback failed")
    try {
      this.q.transaction((tx) => {
        for (const t of s.steps) {
          if (t.op === 'execute') tx.execute(t.sql, t.params)
          else if (t.op === 'publish') tx.publish(t.topic, t.payload, publishOptions(t))
          else if (t.op === 'ack') tx.ack(this.delivery(t.delivery))
          else if (t.op === 'nack') tx.nack(this.delivery(t.delivery), t.reason ?? '')
          else if (t.op === 'inbox') {
            const opts = t.window_ms === undefined ? undefined : { windowMs: t.window_ms }
            assert.equal(tx.inbox(t.key, opts), t.expect, JSON.stringify(t))
          }
          else throw new Error(`unknown transaction op ${t.op}`)
        }
        if (s.throw) throw failure
      })
    } catch (e) {
      if (e !== failure) throw e
    }
  }
}

for (const file of fs.readdirSync(DIR).filter((f) => f.endsWith('.json')).sort()) {
  const scenario = JSON.parse(fs.readFileSync(path.join(DIR, file), 'utf8'))
  // A scenario may name the languages that run it (see its README).
  const skip = scenario.languages !== undefined && !scenario.languages.includes('node')
  for (const [variant, key] of [['', undefined], [' (encrypted)', PASSPHRASE]]) {
    test(`scenario ${file}${variant}: ${scenario.name}`, { skip }, () => runScenario(file, scenario, key))
  }
}

/** @param {string} file @param {Step} scenario @param {string} [key] */
async function runScenario(file, scenario, key) {
  const r = new Runner(scenario.queue ?? {}, key)
  for (const [i, s] of scenario.steps.entries()) {
    const at = `${file} step ${i} (${s.op})`
    let out
    try {
      out = await r.step(s)
    } catch (e) {
      if (s.error === undefined) throw e
      assert.ok(e instanceof FerrymqError, `${at}: expected ${s.error}, got ${e}`)
      assert.equal(e.code, s.error, `${at}: ${e.message}`)
      continue
    }
    assert.equal(s.error, undefined, `${at}: expected ${s.error}, got success`)
    if (s.expect !== undefined) checkSubset(r.resolve(s.expect), out, at)
  }
  if (!r.q.closed) await r.q.close()
}

test('every scenario file is here', () => {
  assert.ok(fs.readdirSync(DIR).filter((f) => f.endsWith('.json')).length >= 13)
})
