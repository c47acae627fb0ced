'use strict'
// ferrymq for Node.js: a durable message queue in one SQLite file, shared by many
// processes. Every queue decision lives in the Rust core; this file converts options
// objects, payloads, Dates and errors, and gives the native calls their Node shapes
// (Promises, async iteration, a worker of async handlers).

const native = require('./native.js')
const trace = require('./trace.js')

const { ERROR_CODES, FerrymqError, call, convertError, invalid } = require('./errors.js')

/** The text a thrown value becomes when it nacks a delivery or answers a check. */
function errorText(e) {
  // Total: a thrown value whose conversion to text throws must not escape either.
  try {
    if (e instanceof Error) return String(e.message || e.name || 'Error')
    const s = String(e)
    return s === '' ? 'Error' : s
  } catch {
    return 'Error (a thrown value that cannot be shown as text)'
  }
}

/** A checker's answer as text for the core to parse; null when there is none. */
function answerText(r) {
  if (r === undefined || r === null) return null
  try {
    return String(r)
  } catch {
    return '(a value that cannot be shown as text)'
  }
}

// A misspelt option would otherwise be ignored in silence (a `delay` meant as `delayMs`
// would publish at once), so unknown keys are refused.
function options(opts, known, what) {
  if (opts === undefined || opts === null) return {}
  if (typeof opts !== 'object' || Array.isArray(opts)) {
    throw invalid(`${what} must be an options object, not ${typeof opts}`)
  }
  for (const k of Object.keys(opts)) {
    if (!known.includes(k)) {
      throw invalid(`unknown option ${JSON.stringify(k)} for ${what}; known: ${known.join(', ')}`)
    }
  }
  return opts
}

function payload(p, what = 'payload') {
  if (typeof p === 'string' || Buffer.isBuffer(p)) return p
  if (p instanceof Uint8Array) return Buffer.from(p.buffer, p.byteOffset, p.byteLength)
  throw invalid(`${what} must be a Buffer, Uint8Array or string, not ${describe(p)}`)
}

function describe(v) {
  if (v === null) return 'null'
  if (Array.isArray(v)) return 'an array'
  return typeof v === 'object' ? v.constructor?.name ?? 'object' : typeof v
}

function instantMs(t, what) {
  if (t instanceof Date) {
    const ms = t.getTime()
    if (Number.isNaN(ms)) throw invalid(`${what} is an invalid Date`)
    return ms
  }
  if (typeof t === 'number') return t
  throw invalid(`${what} must be a Date or milliseconds since the epoch, not ${describe(t)}`)
}

// The options each native call takes, by the names callers write (declared once, with
// their conversions, in src/convert.rs); the JS-side options are added where they are used.
const OPTION_KEYS = native.optionKeys()
const PUBLISH_OPTS = OPTION_KEYS.PublishOpts

// Every publish path (publish, publishAsync, publishBatch, Transaction, prepare,
// publishIn) comes through here, so each carries the active span's traceparent.
function publishOptions(opts) {
  return trace.traced(checkedPublishOptions(opts))
}

function checkedPublishOptions(opts) {
  if (opts === undefined) return undefined
  const o = options(opts, PUBLISH_OPTS, 'publish options')
  if (o.deliverAt === undefined) return o
  const { deliverAt, ...rest } = o
  return { ...rest, deliverAtMs: instantMs(deliverAt, 'deliverAt') }
}

const SCHEDULE_OPTS = OPTION_KEYS.ScheduleOpts

function scheduleOptions(opts) {
  const o = options(opts ?? {}, SCHEDULE_OPTS, 'schedule options')
  if (o.startAt === undefined) return o
  const { startAt, ...rest } = o
  return { ...rest, startAtMs: instantMs(startAt, 'startAt') }
}

function batchMessage(m, i) {
  if (m === null || typeof m !== 'object') throw invalid(`message ${i} must be an object`)
  const { topic, payload: body, ...opts } = m
  return { topic, payload: payload(body, `message ${i} payload`), options: publishOptions(opts) }
}

function batch(messages) {
  if (!Array.isArray(messages)) throw invalid('messages must be an array')
  return messages.map(batchMessage)
}

function sqlParams(params) {
  if (params === undefined || params === null) return undefined
  if (!Array.isArray(params)) throw invalid('params must be an array of values')
  return params.map((v, i) => {
    if (v === undefined || v === null) return null
    if (typeof v === 'boolean') return v ? 1 : 0
    if (typeof v === 'number' || typeof v === 'bigint' || typeof v === 'string') return v
    if (v instanceof Uint8Array) return payload(v)
    throw invalid(`parameter ${i}: SQL values are null, number, bigint, string, boolean or Buffer, not ${describe(v)}`)
  })
}

/**
 * Makes each method of a native prototype throw FerrymqErrors (a new native method needs no
 * line here); returns the methods as they were, for the wrappers that convert arguments.
 */
function mappingErrors(proto) {
  /** @type {Record<string, Function>} */
  const raw = {}
  for (const [name, d] of Object.entries(Object.getOwnPropertyDescriptors(proto))) {
    if (name === 'constructor' || typeof d.value !== 'function') continue
    const f = d.value
    raw[name] = f
    proto[name] = {
      [name](...args) {
        return call(() => f.apply(this, args))
      },
    }[name]
  }
  return raw
}

// Delivery and HalfMessage are the native classes themselves (no second object per
// message); these give them FerrymqErrors and convert nack's and settle's arguments.
const Delivery = native.Delivery
{
  const proto = Delivery.prototype
  const raw = mappingErrors(proto)
  proto.nack = function nack(reason = '', opts) {
    if (typeof reason !== 'string') throw invalid(`reason must be a string, not ${describe(reason)}`)
    const o = options(opts, ['delayMs'], 'nack options')
    call(() => raw.nack.call(this, reason, o))
  }
  proto.settle = function settle(error = null) {
    return call(() => raw.settle.call(this, error === null ? null : errorText(error)))
  }
  proto.withSpan = function withSpan(fn) {
    return trace.withSpan(this, fn)
  }
}

const HalfMessage = native.HalfMessage
mappingErrors(HalfMessage.prototype)

const NATIVE = Symbol('ferrymq.native')

/** A retry schedule for a consumer group; delays are milliseconds. */
class RetryPolicy {
  constructor(inner) {
    if (!(inner instanceof native.RetryPolicy)) {
      throw invalid('use RetryPolicy.rocketmq(), .alipay(), .wechatPay(), .exponential() or .fixed()')
    }
    this[NATIVE] = inner
    Object.freeze(this)
  }
  /** RocketMQ's 16 steps: 10s 30s 1m 2m ... 2h (the default). */
  static rocketmq() {
    return new RetryPolicy(native.RetryPolicy.rocketmq())
  }
  static alipay() {
    return new RetryPolicy(native.RetryPolicy.alipay())
  }
  static wechatPay() {
    return new RetryPolicy(native.RetryPolicy.wechatPay())
  }
  static exponential(opts) {
    const o = options(opts, ['initialMs', 'maxDelayMs', 'maxRetries', 'jitter'], 'exponential options')
    return new RetryPolicy(call(() => native.RetryPolicy.exponential(o)))
  }
  static fixed(delaysMs) {
    if (!Array.isArray(delaysMs)) throw invalid('fixed() takes an array of delays in milliseconds')
    return new RetryPolicy(call(() => native.RetryPolicy.fixed(delaysMs)))
  }
  get maxRetries() {
    return this[NATIVE].maxRetries
  }
  toString() {
    return this[NATIVE].toString()
  }
}

const Resolution = Object.freeze({ COMMIT: 'commit', ROLLBACK: 'rollback', UNKNOWN: 'unknown' })

/** The outbox transaction passed to `q.transaction((tx) => ...)`. */
class Transaction {
  #tx
  constructor(tx) {
    this.#tx = tx
  }
  /** Runs one statement with bound parameters; returns the number of rows changed. */
  execute(sql, params) {
    const p = sqlParams(params)
    return call(() => this.#tx.execute(sql, p))
  }
  /** Rows as arrays of values (integers as numbers, BLOBs as Buffers, NULL as null). */
  query(sql, params) {
    const p = sqlParams(params)
    return call(() => this.#tx.query(sql, p))
  }
  publish(topic, body, opts) {
    const o = publishOptions(opts)
    return call(() => this.#tx.publish(topic, payload(body), o))
  }
  publishBatch(messages) {
    const b = batch(messages)
    return call(() => this.#tx.publishBatch(b))
  }
  /** Acks in this transaction: LEASE_LOST here rolls the whole transaction back. */
  ack(delivery) {
    call(() => this.#tx.ack(delivery))
  }
  nack(delivery, reason = '', opts) {
    const o = options(opts, ['delayMs'], 'nack options')
    call(() => this.#tx.nack(delivery, reason, o))
  }
  /**
   * The inbox: true the first time `key` is seen within `windowMs` (default a week),
   * false for a redelivery. Remembered only if this transaction commits.
   */
  inbox(key, opts) {
    const o = options(opts, ['windowMs'], 'inbox options')
    return call(() => this.#tx.inbox(key, o))
  }
}

/** Runs an async handler over a consumer group; see Queue#worker. */
class Worker {
  #abort
  constructor(abort, done) {
    this.#abort = abort
    /** Settles when every loop has ended: after stop(), or rejected with the queue error that ended it. */
    this.done = done
  }
  get running() {
    return !this.#abort.signal.aborted
  }
  /** Ends waiting receives at once, lets running handlers finish and settle, then resolves. */
  stop() {
    this.#abort.abort()
    return this.done
  }
}

const QUEUE_OPTS = [...OPTION_KEYS.QueueOpts, 'key', 'testClock']
const RECEIVE_OPTS = [...OPTION_KEYS.ReceiveOpts, 'signal']

function receiveParts(opts, what) {
  const { signal, ...rest } = options(opts, RECEIVE_OPTS, what)
  if (signal !== undefined && !(signal instanceof AbortSignal)) throw invalid('signal must be an AbortSignal')
  return { signal, rest }
}

/**
 * The next delivery of a NativeConsumer: claimed on the JS thread when one is ready,
 * else awaited on the core's wait; null once `signal` aborts.
 */
async function nextDelivery(c, signal) {
  while (!signal?.aborted) {
    const now = call(() => c.nextNow())
    if (now !== null) return now
    let d
    try {
      // Deliveries that arrive with the abort are returned: the loop settles or puts them back.
      d = await withCancel(signal, (cancel) => c.next(cancel))
    } catch (e) {
      throw convertError(e)
    }
    if (d !== null) return d
  }
  return null
}

/**
 * Runs `fn` with a native ReceiveCancel that `signal` aborts (none without a signal), and
 * removes the listener once `fn` is done.
 */
async function withCancel(signal, fn) {
  if (signal === undefined) return fn(undefined)
  const cancel = new native.ReceiveCancel()
  const onAbort = () => cancel.cancel()
  signal.addEventListener('abort', onAbort, { once: true })
  try {
    return await fn(cancel)
  } finally {
    signal.removeEventListener('abort', onAbort)
  }
}

// Encryption keys (src/keys.rs): text (a passphrase, or x'<64 hex digits>'), 32 raw bytes,
// or a synchronous provider of them. Nothing here shows a key's value in an error.

function fixedKey(k, what) {
  if (typeof k === 'string') return k
  if (k instanceof Uint8Array) return payload(k)
  throw invalid(`${what} must be a string or a Buffer/Uint8Array of 32 bytes, not ${describe(k)}`)
}

function keyOption(key) {
  if (key === undefined || key === null) return undefined
  if (typeof key === 'function') return keyProvider(key)
  return fixedKey(key, 'key')
}

/**
 * The user's provider as the native side calls it (on the JS thread, maybe in the middle
 * of a sync call): it never throws; a throw or a wrong type becomes `error`, which the
 * core reports as ENCRYPTION.
 */
function keyProvider(provider) {
  return () => {
    try {
      const r = provider()
      if (r !== null && typeof r === 'object' && typeof r.then === 'function') {
        return { error: 'it returned a Promise; a key provider must be synchronous' }
      }
      const list = Array.isArray(r) ? r : [r]
      const keys = []
      for (const [i, k] of list.entries()) {
        if (typeof k === 'string') keys.push(k)
        else if (k instanceof Uint8Array) keys.push(payload(k))
        else {
          const which = Array.isArray(r) ? `key ${i} of its list is` : 'it returned'
          return { error: `${which} ${describe(k)}, not a string or a Buffer/Uint8Array (or an array of them)` }
        }
      }
      return { keys }
    } catch (e) {
      return { error: `it threw: ${errorText(e)}` }
    }
  }
}

/** The NativeQueue behind a Queue (for publishIn / ackIn's `queue` option). */
let nativeQueue

/** `new Queue(SHARE, native)` wraps an open NativeQueue (withReason) instead of opening. */
const SHARE = Symbol('ferrymq share')

/** A queue in one SQLite file. */
class Queue {
  #q
  static {
    nativeQueue = (q) => q.#q
  }
  /** Opens (creating and migrating if needed) the queue file at `path`. */
  constructor(path, opts) {
    if (path === SHARE) {
      this.#q = opts
      return
    }
    const { testClock, foreignKeys, key, ...o } = options(opts, QUEUE_OPTS, 'Queue options')
    if (testClock !== undefined && !(testClock instanceof native.ManualClock)) {
      throw invalid("testClock must be a ManualClock from 'ferrymq/testing'")
    }
    if (foreignKeys !== undefined && foreignKeys !== null) {
      if (typeof foreignKeys !== 'boolean') throw invalid(`foreignKeys must be a boolean, not ${describe(foreignKeys)}`)
      o.foreignKeys = foreignKeys
    }
    this.#q = call(() => new native.NativeQueue(path, o, testClock, keyOption(key)))
  }

  /** Rewrites the encrypted file under `key` (a string or 32 bytes); other handles follow through their key providers. */
  async rekey(key) {
    const k = fixedKey(key, 'key')
    try {
      await this.#q.rekey(k)
    } catch (e) {
      throw convertError(e)
    }
  }

  /** Creates or updates the consumer group `group` on `topic` (idempotent). */
  subscribe(group, topic, opts) {
    const { retry, ...o } = options(opts, [...OPTION_KEYS.SubscribeOpts, 'retry'], 'subscribe options')
    if (retry !== undefined && !(retry instanceof RetryPolicy)) throw invalid('retry must be a RetryPolicy')
    call(() => this.#q.subscribe(group, topic, o, retry?.[NATIVE]))
  }

  /** Creates (or replaces) schedule `name`: `body` to `topic` on every tick of `cron` or `everyMs`. */
  schedule(name, topic, body, opts) {
    const o = scheduleOptions(opts)
    call(() => this.#q.schedule(name, topic, payload(body), o))
  }

  /**
   * A queue of the same class on the same open file (closing one closes both) whose
   * operator actions record `reason` in the audit trail.
   */
  withReason(reason) {
    if (typeof reason !== 'string') throw invalid(`reason must be a string, not ${describe(reason)}`)
    const shared = call(() => this.#q.withReason(reason))
    // Queue's constructor with the caller's class as new.target: a subclass stays one.
    return Reflect.construct(Queue, [SHARE, shared], this.constructor)
  }

  /** Durable when it returns; the message id (or the first id for a repeated idempotencyKey). */
  publish(topic, body, opts) {
    const o = publishOptions(opts)
    return call(() => this.#q.publish(topic, payload(body), o))
  }

  /** `publish` off the event loop. */
  async publishAsync(topic, body, opts) {
    const o = publishOptions(opts)
    try {
      return await this.#q.publishAsync(topic, payload(body), o)
    } catch (e) {
      throw convertError(e)
    }
  }

  /** All or nothing, in one commit. */
  publishBatch(messages) {
    const b = batch(messages)
    return call(() => this.#q.publishBatch(b))
  }

  /** Up to `max` deliveries, waiting up to `waitMs` (default 0) for the first. */
  async receive(group, opts) {
    const { signal, rest } = receiveParts(opts, 'receive options')
    signal?.throwIfAborted()
    const now = call(() => this.#q.receiveNow(group, rest))
    if (now.length > 0 || !(rest.waitMs > 0)) return now
    try {
      const ds = await withCancel(signal, (cancel) => this.#q.receive(group, rest, cancel))
      // Deliveries that arrived with the abort are still returned: dropping them would
      // leave them leased to nobody until the lease ends.
      if (ds.length === 0) signal?.throwIfAborted()
      return ds
    } catch (e) {
      throw e === signal?.reason ? e : convertError(e)
    }
  }

  /**
   * Deliveries of `group` forever (or until `signal` aborts), from the core's consumer:
   * each wait holds no thread, the lease of the delivery in hand is renewed until the
   * loop moves on, and leaving the loop (break, return, abort) puts back what it holds.
   */
  consume(group, opts) {
    const { signal, rest } = receiveParts(opts, 'consume options')
    const q = this.#q
    return (async function* consume() {
      const c = call(() => q.consumer(group, rest))
      try {
        for (;;) {
          const d = await nextDelivery(c, signal)
          if (d === null) return
          yield d
          c.done(d)
          // Let timers and I/O run between deliveries: one ready at once settles without
          // waiting, so a busy queue would otherwise hold the event loop for its backlog.
          await new Promise(setImmediate)
        }
      } finally {
        c.close()
      }
    })()
  }

  /**
   * Awaits `handler(delivery)` for every delivery on `concurrency` loops sharing the core's
   * consumer (which renews each lease while its handler runs): resolving acks, throwing or
   * rejecting nacks with the error's message (the core decides retry or dead).
   */
  worker(group, handler, opts) {
    if (typeof handler !== 'function') throw invalid('handler must be a function')
    const { concurrency = 1, signal, ...rest } = options(
      opts,
      ['concurrency', ...RECEIVE_OPTS],
      'worker options',
    )
    if (signal !== undefined && !(signal instanceof AbortSignal)) throw invalid('signal must be an AbortSignal')
    const c = call(() => this.#q.consumer(group, rest, concurrency))
    const abort = new AbortController()
    const stopOn = () => abort.abort()
    signal?.addEventListener('abort', stopOn, { once: true })
    if (signal?.aborted) abort.abort()
    const loop = async () => {
      for (;;) {
        const d = await nextDelivery(c, abort.signal)
        if (d === null) return
        let error = null
        try {
          await d.withSpan(() => handler(d))
        } catch (e) {
          error = errorText(e)
        }
        call(() => c.settle(d, error))
        await new Promise(setImmediate) // see consume
      }
    }
    const loops = Array.from({ length: c.concurrency }, () =>
      loop().catch((e) => {
        abort.abort()
        throw e
      }),
    )
    const done = Promise.all(loops).then(
      () => undefined,
      (e) => {
        throw e
      },
    )
    done.finally(() => {
      c.close()
      signal?.removeEventListener('abort', stopOn)
    }).catch(() => {})
    return new Worker(abort, done)
  }

  /**
   * Runs `fn(tx)` in one write transaction: commits when it returns, rolls back and
   * rethrows when it throws. `fn` must be synchronous: the transaction holds the file's
   * write lock, which an `await` would keep from every other writer.
   */
  transaction(fn) {
    if (typeof fn !== 'function') throw invalid('transaction() takes a function (tx) => ...')
    const tx = call(() => this.#q.begin())
    let result
    try {
      result = fn(new Transaction(tx))
      if (result !== null && typeof result === 'object' && typeof result.then === 'function') {
        Promise.resolve(result).catch(() => {})
        throw invalid('the transaction callback returned a Promise; it must be synchronous (it was rolled back)')
      }
    } catch (e) {
      if (tx.isOpen) call(() => tx.rollback())
      throw e
    }
    call(() => tx.commit())
    return result
  }

  /** A half message: stored invisible until `commit()`; `rollback()` discards it. */
  prepare(topic, body, opts) {
    const o = publishOptions(opts)
    return call(() => this.#q.prepare(topic, payload(body), o))
  }

  /**
   * Registers `checker(info)` (sync or async) for the topic's undecided half messages; it
   * returns a Resolution. A throw or a rejection counts as UNKNOWN (asked again later).
   */
  setChecker(topic, checker) {
    if (typeof checker !== 'function') throw invalid('checker must be a function')
    const q = this.#q
    // The native side sends [request, info]; every path ends in exactly one answer, and
    // nothing thrown here can reach the event loop.
    const answer = (request, resolution, error) => {
      try {
        q.answerCheck(request, resolution, error)
      } catch {
        // the queue is gone; the native side already gave up waiting
      }
    }
    const dispatch = ([request, info]) => {
      Promise.resolve()
        .then(() => checker(info))
        .then(
          (r) => answer(request, answerText(r), null),
          (e) => answer(request, null, errorText(e)),
        )
        .catch(() => answer(request, null, 'the checker failed'))
    }
    call(() => q.setChecker(topic, dispatch))
  }
}

// Every native method the class above does not write out is a Queue method as it is, its
// errors made FerrymqErrors (thrown, or the Promise's rejection): a new native method needs
// no line here unless it takes an options object (OPTION_ARGS) or a value to convert.

/** Native methods that are the class's plumbing, not the queue's API. */
const PLUMBING = new Set(['constructor', 'receiveNow', 'consumer', 'begin', 'answerCheck'])

/**
 * Methods whose options object (at argument `at`, unknown keys refused) the native method
 * takes as positional arguments, in the order of `keys`.
 */
const OPTION_ARGS = {
  audit: { at: 0, keys: ['after', 'limit'] },
  halfMessages: { at: 0, keys: ['state', 'limit'] },
  deadLetters: { at: 1, keys: ['limit'] },
  redrive: { at: 1, keys: ['ids'] },
  purgeDeadLetters: { at: 1, keys: ['olderThanMs'] },
  purgeAcked: { at: 0, keys: ['olderThanMs'] },
  vacuum: { at: 0, keys: ['pages'] },
}

/**
 * Native methods that return a Promise and take arguments: a bad argument rejects it rather
 * than throwing. (Any Promise a forwarded method returns has its rejection mapped.)
 */
const ASYNC = new Set(['close', 'runChecks', 'purgeAcked', 'vacuum'])

function forward(name) {
  const spec = OPTION_ARGS[name]
  const run = (q, args) => {
    if (spec !== undefined) {
      const o = options(args[spec.at], spec.keys, `${name} options`)
      args = [...args.slice(0, spec.at), ...spec.keys.map((k) => o[k] ?? undefined)]
    }
    return q[name](...args)
  }
  const method = ASYNC.has(name)
    ? async function (...args) {
        try {
          return await run(nativeQueue(this), args)
        } catch (e) {
          throw convertError(e)
        }
      }
    : function (...args) {
        const result = call(() => run(nativeQueue(this), args))
        // A native method that works off the JS thread rejects with the native error.
        return result instanceof Promise
          ? result.catch((e) => {
              throw convertError(e)
            })
          : result
      }
  return Object.defineProperty(method, 'name', { value: name })
}

for (const [name, d] of Object.entries(Object.getOwnPropertyDescriptors(native.NativeQueue.prototype))) {
  if (PLUMBING.has(name) || Object.hasOwn(Queue.prototype, name)) continue
  const property = d.get
    ? { get: { [name]() { return nativeQueue(this)[name] } }[name] }
    : { value: forward(name), writable: true }
  Object.defineProperty(Queue.prototype, name, { ...property, configurable: true })
}

// publishIn / ackIn / inboxIn: ferrymq's statements on the caller's own connection (better-sqlite3
// or node:sqlite), in the caller's transaction. The core gives the SQL, checks and
// converts the parameters, and maps the errors; this runs the statements.

const SQL = native.sqlStatements()

/** @type {WeakMap<object, Map<string, any>>} prepared statements per connection */
const statements = new WeakMap()

function statement(db, sql) {
  let byText = statements.get(db)
  if (byText === undefined) {
    byText = new Map()
    statements.set(db, byText)
  }
  let st = byText.get(sql)
  if (st === undefined) {
    st = db.prepare(sql)
    byText.set(sql, st)
  }
  return st
}

function checkDb(db) {
  if (db === null || typeof db !== 'object' || typeof db.prepare !== 'function') {
    throw invalid(`db must be a better-sqlite3 Database or a node:sqlite DatabaseSync, not ${describe(db)}`)
  }
  // better-sqlite3 `open`, node:sqlite `isOpen` (where they exist)
  if (db.open === false || db.isOpen === false) throw invalid('db is closed')
}

// better-sqlite3 says `inTransaction`, node:sqlite (22.16+) `isTransaction`. An older
// node:sqlite says neither: BEGIN tells, failing only inside a transaction; outside one
// it is rolled back at once, so nothing stays open or written.
function inTransaction(db) {
  if (typeof db.inTransaction === 'boolean') return db.inTransaction
  if (typeof db.isTransaction === 'boolean') return db.isTransaction
  if (typeof db.exec !== 'function') {
    throw invalid('db must be a better-sqlite3 Database or a node:sqlite DatabaseSync (it has no exec)')
  }
  try {
    db.exec('BEGIN')
  } catch {
    return true
  }
  db.exec('ROLLBACK')
  return false
}

function requireTransaction(db) {
  if (!inTransaction(db)) throw fromInfo(native.noTransactionError())
}

function fromInfo(info, cause) {
  return new FerrymqError(info.code, info.message, cause === undefined ? undefined : { cause })
}

/** Runs `f`; an error of the host library becomes ferrymq's, with the original as `cause`. */
function onConnection(f, delivery) {
  try {
    return f()
  } catch (e) {
    if (e instanceof FerrymqError) throw e
    const text = e instanceof Error ? String(e.message) : errorText(e)
    throw fromInfo(native.sqlError(text, delivery), e)
  }
}

/** With a queue: refuses a db open on another file than the queue's. */
function checkFile(db, nq) {
  if (nq === undefined) return
  const file = onConnection(() => Object.values(statement(db, SQL.mainFile).get())[0])
  call(() => native.checkFile(nq, String(file)))
}

function queueOption(queue) {
  if (queue === undefined || queue === null) return undefined
  if (!(queue instanceof Queue)) throw invalid(`queue must be a Queue, not ${describe(queue)}`)
  return nativeQueue(queue)
}

// better-sqlite3 returns a BigInt with safeIntegers on; ids stay below 2^53.
function idNumber(v) {
  return typeof v === 'bigint' ? Number(v) : v
}

/**
 * Publishes on `db`, the caller's own SQLite connection, inside its open transaction: the
 * message commits or rolls back with the caller's rows. Returns the message id (the first
 * one for a repeated idempotencyKey).
 */
function publishIn(db, topic, body, opts) {
  const { queue, ...rest } = options(opts, [...PUBLISH_OPTS, 'queue'], 'publishIn options')
  const nq = queueOption(queue)
  const p = payload(body)
  const o = publishOptions(rest)
  const len = typeof p === 'string' ? Buffer.byteLength(p) : p.length
  const row = call(() => native.publishRow(topic, len, o, nq))
  checkDb(db)
  requireTransaction(db)
  checkFile(db, nq)
  return onConnection(() => {
    statement(db, SQL.publish).run(topic, p, ...row)
    const got = statement(db, SQL.publishedId).get(topic, row[4])
    return idNumber(Object.values(got)[0])
  })
}

/**
 * Acks `delivery` on `db`, inside its open transaction: the ack commits or rolls back with
 * the caller's rows. Throws LEASE_LOST when the delivery is no longer held.
 */
function ackIn(db, delivery, opts) {
  const { queue } = options(opts, ['queue'], 'ackIn options')
  const nq = queueOption(queue)
  if (!(delivery instanceof Delivery)) throw invalid(`delivery must be a Delivery, not ${describe(delivery)}`)
  checkDb(db)
  requireTransaction(db)
  checkFile(db, nq)
  const row = call(() => native.ackRow(delivery, nq))
  onConnection(() => {
    statement(db, SQL.ack).run(...row)
  }, delivery)
}

/**
 * The inbox (`tx.inbox`) on `db`, inside its open transaction: true the first time `key`
 * is seen within `windowMs` (default a week), false for a redelivery; the key is
 * remembered only if that transaction commits.
 */
function inboxIn(db, key, opts) {
  const { queue, windowMs } = options(opts, ['queue', 'windowMs'], 'inboxIn options')
  const nq = queueOption(queue)
  const row = call(() => native.inboxRow(key, windowMs, nq))
  checkDb(db)
  requireTransaction(db)
  checkFile(db, nq)
  return onConnection(() => Number(/** @type {any} */ (statement(db, SQL.inbox).run(...row)).changes) === 1)
}

if (typeof Symbol.asyncDispose === 'symbol') {
  Queue.prototype[Symbol.asyncDispose] = function dispose() {
    return this.close()
  }
}

module.exports = {
  Queue,
  RetryPolicy,
  Resolution,
  FerrymqError,
  ERROR_CODES,
  Delivery,
  HalfMessage,
  Transaction,
  Worker,
  publishIn,
  ackIn,
  inboxIn,
}
