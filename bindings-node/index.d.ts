// Types of the ferrymq Node package. Ids are JS numbers: exact up to 2^53, which SQLite
// rowids of one queue file do not reach in practice.

/// <reference types="node" />

export type ErrorCode =
  | 'INVALID_ARGUMENT'
  | 'NOT_FOUND'
  | 'LEASE_LOST'
  | 'CLOSED'
  | 'BUSY'
  | 'STORAGE'
  | 'CALLBACK'
  /** A publish would pass the queue's maxReady for a consumer group; nothing was written. */
  | 'FULL'
  /** An encrypted file opened with a wrong or no key, a plain file opened with one, or a
   *  key provider that failed (its reason in the message); nothing was read or written. */
  | 'ENCRYPTION'

export declare const ERROR_CODES: readonly ErrorCode[]

/** Every error ferrymq throws; `code` names its kind. */
export declare class FerrymqError extends Error {
  constructor(code: ErrorCode, message: string, options?: ErrorOptions)
  readonly name: 'FerrymqError'
  readonly code: ErrorCode
}

/** What a message body may be; it comes back as a Buffer. Strings are stored as UTF-8. */
export type Payload = Buffer | Uint8Array | string

/** A fixed key: a passphrase (stretched as SQLCipher's `PRAGMA key = 'passphrase'` does),
 *  SQLCipher's raw-key text `x'<64 hex digits>'`, or 32 raw bytes. */
export type EncryptionKey = string | Buffer | Uint8Array

/** Called (synchronously, on the JS thread) when the queue opens and again whenever its key
 *  stops opening the file (another process rekeyed it): the keys to try, newest first. A
 *  throw or a wrong return type fails the call that needed the key with ENCRYPTION. */
export type KeyProvider = () => EncryptionKey | EncryptionKey[]

export interface QueueOptions {
  /** Encryption at rest (SQLCipher): the key of the file, or a provider of keys. A new file
   *  is created encrypted; an existing one must match (ENCRYPTION otherwise). Default none. */
  key?: EncryptionKey | KeyProvider
  /** 'normal' (default): durable across process crashes; 'full': across power loss too. */
  synchronous?: 'normal' | 'full'
  /** How long a write waits for another process's lock before BUSY (default 5000). */
  busyTimeoutMs?: number
  /** Largest payload accepted, in bytes. */
  maxPayload?: number
  /** How long an idempotency key is remembered (default 24 h). */
  idempotencyWindowMs?: number
  /** Age after which an undecided half message is checked (default 6000). */
  checkAfterMs?: number
  /** Time between checks of one half message (default 30000). */
  checkIntervalMs?: number
  /** UNKNOWN answers before a half message is rolled back (default 15). */
  checkMax?: number
  /** How often a waiting receive looks for other processes' commits (default 2). */
  pollIntervalMs?: number
  /** Largest file size in bytes; writes past it fail with STORAGE. */
  maxSize?: number
  /** SQLite's foreign_keys on the queue's connections (what FOREIGN KEY clauses of
   *  business tables obey in `tx.execute`); left out: the build's default, on. */
  foreignKeys?: boolean | null
  /** Backpressure: a publish (batch, transaction, half message) whose message would go to a
   *  consumer group that already has this many waiting (ready or scheduled) fails with
   *  FULL and writes nothing. 1 to 1,000,000; a limit of this handle only. Default none. */
  maxReady?: number
  /** Test only: a ManualClock from 'ferrymq/testing'. */
  testClock?: import('./testing').ManualClock
}

export interface PublishOptions {
  /** One short tag that consumer groups filter on ("created"). */
  tag?: string
  /** Business key for lookup with find() (an order id). */
  key?: string
  headers?: Record<string, string>
  /** Ordering key: messages with one key reach each consumer group strictly in order. */
  orderingKey?: string
  /** A repeated key (per topic, within the window) returns the first id and adds nothing. */
  idempotencyKey?: string
  delayMs?: number
  /** A Date or milliseconds since the epoch. */
  deliverAt?: Date | number
  /** 0 (default) to 9: within a consumer group, higher is received first (strictly: a
   *  steady stream of high priority holds lower ones back). One ordering key stays in order. */
  priority?: number
}

export interface BatchMessage extends PublishOptions {
  topic: string
  payload: Payload
}

export interface SubscribeOptions {
  /** Tag filter: '*' (default), 'created', 'created || refunded'. */
  tags?: string
  /** Default: RetryPolicy.rocketmq(). */
  retry?: RetryPolicy
  /** Lease of each delivery (default 30000). */
  leaseMs?: number
  /** Most deliveries of the group in flight at once, across all processes (1 to
   *  1,000,000). Subscribing again without it lifts the limit. */
  maxInflight?: number
  /** Most deliveries per second for the group, across all processes (more than 0, at most
   *  1,000,000): a token bucket in the file. Subscribing again without it lifts the limit. */
  rate?: number
  /** How many the group may take at once after a quiet spell (1 to 1,000,000; only with
   *  rate). Default: rate rounded up. */
  burst?: number
}

export interface ReceiveOptions {
  /** Most deliveries to return (default 1). */
  max?: number
  /** How long to wait for the first one (receive: default 0; consume and worker: the core's default wait, 1000; 0 there means that default). */
  waitMs?: number
  /** Lease for these deliveries instead of the group's. */
  leaseMs?: number
  /** Ends the wait: receive rejects with the signal's reason, consume ends. */
  signal?: AbortSignal
}

export interface WorkerOptions extends ReceiveOptions {
  /** Handlers running at once (default 1). */
  concurrency?: number
}

export interface InboxOptions {
  /** How long the key counts as seen (ms, at least 1); default 7 days. */
  windowMs?: number
}

export interface NackOptions {
  /** Retry after this delay instead of the policy's next one. */
  delayMs?: number
}

/** What settle() did. */
export type Settled = 'acked' | 'retrying' | 'dead' | 'lease_lost'

/**
 * The part of an @opentelemetry/api `Span` ferrymq's declarations name (the value is the
 * whole Span; @opentelemetry/api is an optional peer dependency, so it is not imported).
 */
export interface TraceSpan {
  spanContext(): { traceId: string; spanId: string; traceFlags: number }
  setAttribute(key: string, value: string | number | boolean): unknown
  addEvent(name: string): unknown
}

/** One message handed to one consumer group under a lease. */
export declare class Delivery {
  private constructor()
  readonly messageId: number
  readonly topic: string
  readonly tag: string | null
  readonly key: string | null
  readonly payload: Buffer
  readonly headers: Record<string, string>
  readonly orderingKey: string | null
  /** 0 to 9. */
  readonly priority: number
  /** 1 on the first delivery, 2 on the first retry, ... */
  readonly attempt: number
  /** The consumer group this delivery belongs to. */
  readonly consumerGroup: string
  readonly publishedAt: Date
  readonly publishedAtMs: number
  readonly leaseUntil: Date
  readonly leaseUntilMs: number
  /** Ends the delivery. Throws LEASE_LOST if the lease expired and someone else holds it. */
  ack(): void
  /** Retry on the group's schedule (or after delayMs); dead past the last retry. */
  nack(reason?: string, options?: NackOptions): void
  /** Renews the lease to leaseMs from now. */
  extend(leaseMs: number): void
  /** Acks when error is null, nacks with its message otherwise; a lost lease is reported. */
  settle(error?: unknown): Settled
  /**
   * Runs `fn` inside this attempt's OpenTelemetry consumer span ("process <topic>", kind
   * CONSUMER, linked to the producer's `traceparent`), awaiting a returned Promise; a throw
   * or rejection is recorded on the span. `span` is undefined without @opentelemetry/api.
   * `queue.worker` runs every handler this way.
   */
  withSpan<T>(fn: (span: TraceSpan | undefined) => T): T
}

export declare class HalfMessage {
  private constructor()
  readonly id: number
  commit(): void
  rollback(): void
}

export interface ExponentialOptions {
  initialMs?: number
  maxDelayMs?: number
  maxRetries?: number
  /** Fraction of each delay drawn at random (default 0.1). */
  jitter?: number
}

export declare class RetryPolicy {
  private constructor()
  /** RocketMQ's 16 steps: 10s 30s 1m 2m 3m ... 1h 2h (the default). */
  static rocketmq(): RetryPolicy
  /** Alipay's notification schedule: 4m 10m 10m 1h 2h 6h 15h. */
  static alipay(): RetryPolicy
  /** WeChat Pay's notification schedule (15 steps, 15s to 6h). */
  static wechatPay(): RetryPolicy
  static exponential(options?: ExponentialOptions): RetryPolicy
  /** Explicit delays in milliseconds; their number is the number of retries. */
  static fixed(delaysMs: number[]): RetryPolicy
  readonly maxRetries: number
  toString(): string
}

export declare const Resolution: {
  readonly COMMIT: 'commit'
  readonly ROLLBACK: 'rollback'
  readonly UNKNOWN: 'unknown'
}
export type Resolution = (typeof Resolution)[keyof typeof Resolution]

export type SqlValue = null | number | bigint | string | boolean | Buffer | Uint8Array | undefined
/** INTEGER columns are numbers, or BigInts beyond 2^53 where a number would lose digits. */
export type SqlResult = null | number | bigint | string | Buffer

/** The outbox transaction inside q.transaction((tx) => ...). */
export declare class Transaction {
  private constructor()
  /** Runs one statement with bound parameters; returns the number of rows changed. */
  execute(sql: string, params?: SqlValue[]): number
  query(sql: string, params?: SqlValue[]): SqlResult[][]
  publish(topic: string, payload: Payload, options?: PublishOptions): number
  publishBatch(messages: BatchMessage[]): number[]
  /** LEASE_LOST here rolls the whole transaction back (exactly-once effect). */
  ack(delivery: Delivery): void
  nack(delivery: Delivery, reason?: string, options?: NackOptions): void
  /**
   * The inbox: true the first time key is seen within windowMs (default a week), false
   * for a redelivery. Remembered only if this transaction commits.
   */
  inbox(key: string, options?: InboxOptions): boolean
}

export declare class Worker {
  private constructor()
  readonly running: boolean
  /** Settles when every loop has ended; rejects with the queue error that ended it. */
  readonly done: Promise<void>
  /** Ends waiting receives, lets running handlers finish and settle, then resolves. */
  stop(): Promise<void>
}

export type DeliveryState = 'ready' | 'scheduled' | 'inflight' | 'acked' | 'dead'
export type MessageState = 'half' | 'committed' | 'rolled_back'
export type AttemptOutcome = 'inflight' | 'acked' | 'nacked' | 'lease_expired'

/** What a tick missed while nothing fired gives (default 'once'). */
export type MissedPolicy = 'catch_up' | 'once' | 'skip'

export interface ScheduleOptions {
  /** 5 fields (minute hour day-of-month month day-of-week) or 6 with seconds first. */
  cron?: string
  /** A fixed period, at least 1 ms. */
  everyMs?: number
  /** IANA time zone of `cron` (default 'UTC'); not with `everyMs`. */
  tz?: string
  /** Tick times in all, the first included; then the schedule ends. */
  repeat?: number
  /** No tick before this time. */
  startAt?: Date | number
  /** No tick before now plus this. */
  delayMs?: number
  tag?: string
  key?: string
  headers?: Record<string, string>
  missed?: MissedPolicy
}

// The records calls return: times are Dates, durations milliseconds, unset fields null.
// records: generated from ferrymq::RECORDS (cargo test -p ferrymq --test stubs_node)
/** One attempt to hand one message to one consumer group. */
export interface AttemptRecord {
  /** 1 for the first delivery, 2 for the first retry, ... */
  attempt: number
  startedAt: Date
  /** When the attempt was settled or its lease ran out; unset while in flight. */
  endedAt: Date | null
  outcome: AttemptOutcome
  /** What the consumer's nack said, or why the lease ended. */
  error: string | null
}

/** Where one message stands in one consumer group. */
export interface DeliveryInfo {
  state: DeliveryState
  attempts: number
  lastError: string | null
  /** One entry per attempt, oldest first. */
  history: AttemptRecord[]
}

/** One check-back of a half message. */
export interface CheckRecord {
  at: Date
  resolution: Resolution
  /** Set when the checker failed; the check counted as unknown. */
  error: string | null
}

/** Everything known about one message. */
export interface MessageInfo {
  id: number
  topic: string
  tag: string | null
  key: string | null
  payload: Buffer
  headers: Record<string, string>
  /** Deliveries of one ordering key reach a consumer group in order. */
  orderingKey: string | null
  publishedAt: Date
  deliverAt: Date
  state: MessageState
  /** 0 to 9 (`PublishOptions::priority`). */
  priority: number
  /** Per consumer group; empty for half messages and messages no group matched. */
  deliveries: Record<string, DeliveryInfo>
  /** Check-backs of a half message, oldest first. */
  checks: CheckRecord[]
}

/** A delivery that used up its retries, kept for an operator. */
export interface DeadLetter {
  messageId: number
  topic: string
  tag: string | null
  key: string | null
  payload: Buffer
  headers: Record<string, string>
  attempts: number
  lastError: string | null
  diedAt: Date
  history: AttemptRecord[]
}

/** One topic's share of `Queue::stats`. */
export interface TopicStats {
  /** Committed messages kept in the file (acked ones stay until `purge_acked`). */
  messages: number
  /** Half messages still undecided. */
  half: number
}

/** One consumer group's share of `Queue::stats`. */
export interface GroupStats {
  topic: string
  ready: number
  /** Delayed first deliveries and ordered messages waiting for their predecessor. */
  scheduled: number
  inflight: number
  /** Waiting out a retry delay. */
  retrying: number
  dead: number
  /** How long the oldest ready delivery has been ready. In milliseconds. */
  oldestReadyAge: number | null
  /** Whether `pause` holds the group: its receives return nothing until `resume`. */
  paused: boolean
}

/** Counts per topic and per consumer group (`Queue::stats`). */
export interface Stats {
  topics: Record<string, TopicStats>
  groups: Record<string, GroupStats>
}

/** One topic as `Queue::topics` lists it. */
export interface TopicInfo {
  name: string
  /** Committed messages kept in the file (acked ones stay until `purge_acked`). */
  messages: number
  /** Deliveries ready now, summed over the topic's consumer groups. */
  ready: number
  /** The consumer groups subscribed to it, by name. */
  groups: string[]
}

/** One schedule as `Queue::schedules` lists it. */
export interface ScheduleInfo {
  name: string
  topic: string
  cron: string | null
  /** In milliseconds. */
  every: number | null
  /** The cron pattern's time zone (`UTC` unless given); unset for `every`. */
  tz: string | null
  /** The next tick not yet handled (in the past if nobody received since it came due). */
  nextAt: Date
  /** Tick times handled so far (published, merged by `once` or skipped). */
  fired: number
  /** Tick times left, the next included (unset: no end). */
  repeatLeft: number | null
  missed: MissedPolicy
  tag: string | null
  key: string | null
  headers: Record<string, string>
}

/** One record of the audit trail (`Queue::audit`). */
export interface AuditRecord {
  /** Increasing in the order the actions committed. */
  id: number
  /** When, on the clock of the queue that acted. */
  at: Date
  /** The verb: `pause`, `resume`, `schedule`, `unschedule`, `commit_half`, `rollback_half`, `redrive`, `purge_dead_letters`, `purge_dead_letter_ids`, `purge_acked`, `vacuum` or `rekey`. */
  action: string
  /** The consumer group, schedule name or message id acted on; empty for the whole file. */
  target: string
  /** JSON text: what was asked and what changed (see docs/DESIGN.md). */
  detail: string | null
  pid: number
  /** The executable's file name (`ferrymq`, `python3.12`, `node`, `java`). */
  process: string
  host: string
  /** The effective OS user. */
  user: string
  /** What the caller gave to `Queue::with_reason`. */
  reason: string | null
}

/** What `Queue::check_file` found: SQLite's integrity check and the file's marks. */
export interface FileCheck {
  /** The lines of `PRAGMA integrity_check`: `["ok"]` for a sound file. */
  integrity: string[]
  /** `PRAGMA user_version`: the schema version the file is at. */
  schemaVersion: number
  /** The schema version this build writes. */
  expectedSchemaVersion: number
  /** `PRAGMA application_id` ("Frry", 0x46727279, for a ferrymq file). */
  applicationId: number
  expectedApplicationId: number
}

/** The SQL that publishes, acks and keeps inbox keys on a caller's own connection (`sql::statements`), each bound with the parameters its `sql` row gives. */
export interface SqlStatements {
  /** The INSERT that publishes: topic, payload, then `PublishRow::params`. */
  publish: string
  /** The SELECT of the id just published: topic, idempotency key. */
  publishedId: string
  /** The INSERT that acks: `AckRow::params`. */
  ack: string
  /** The SELECT of the connection's main file, for `sql::check_file`. */
  mainFile: string
  /** The inbox INSERT: `InboxRow::params`; one row changed means a new key. */
  inbox: string
}

// end of generated records

export type Checker = (info: MessageInfo) => Resolution | Promise<Resolution>

/** A queue in one SQLite file. Synchronous calls are quick writes and reads; every call that waits returns a Promise. */
export declare class Queue {
  /** Opens (creating and migrating if needed) the queue file at path. */
  constructor(path: string, options?: QueueOptions)
  readonly path: string
  readonly closed: boolean
  /** Stops background work and closes the file; later calls throw CLOSED. */
  close(): Promise<void>
  /** Rewrites every page of the encrypted file under `key` in one transaction. Other
   *  handles (any process) follow if their key provider lists the new key. */
  rekey(key: EncryptionKey): Promise<void>
  /** Creates or updates a consumer group (idempotent). */
  subscribe(group: string, topic: string, options?: SubscribeOptions): void
  /** Holds the group's deliveries, in every process, until resume(); its messages keep
   *  accumulating and deliveries already out can still be settled. NOT_FOUND for an
   *  unknown group. Pausing twice is fine. */
  pause(group: string): void
  /** Lets the group's receives hand out messages again. Resuming twice is fine. */
  resume(group: string): void
  /** The Prometheus text exposition (format 0.0.4): the file's gauges per topic and
   *  consumer group, then this handle's own counters (published, acked, nacked, ...). */
  metrics(): string
  /** Creates schedule `name` (or replaces the one of that name, its tick count starting
   *  over): `payload` to `topic` on every tick of `cron` or `everyMs` (exactly one).
   *  Ticks are fired by the processes that receive from the file. INVALID_ARGUMENT for a
   *  bad name, pattern, time zone, period or repeat. */
  schedule(name: string, topic: string, payload: Payload, options: ScheduleOptions): void
  /** Removes schedule `name`; NOT_FOUND if there is none. */
  unschedule(name: string): void
  /** Every schedule of the file, by name. */
  schedules(): ScheduleInfo[]
  /** A queue on the same open file (closing one closes both) whose operator actions record
   *  `reason` in the audit trail; INVALID_ARGUMENT for a blank reason, over 1,000 bytes, or with NUL. */
  withReason(reason: string): this
  /** The audit trail: operator actions with ids above `after`, oldest first, at most `limit` (1-10,000; 100). */
  audit(options?: { after?: number; limit?: number }): AuditRecord[]
  /** Durable when it returns; returns the message id. */
  publish(topic: string, payload: Payload, options?: PublishOptions): number
  /** publish off the event loop. */
  publishAsync(topic: string, payload: Payload, options?: PublishOptions): Promise<number>
  /** All or nothing, in one commit. */
  publishBatch(messages: BatchMessage[]): number[]
  receive(group: string, options?: ReceiveOptions): Promise<Delivery[]>
  consume(group: string, options?: ReceiveOptions): AsyncGenerator<Delivery, void, undefined>
  /** Resolving acks; throwing or rejecting nacks with the error's message. */
  worker(group: string, handler: (delivery: Delivery) => unknown, options?: WorkerOptions): Worker
  /** Commits when fn returns, rolls back and rethrows when it throws. fn must be synchronous. */
  transaction<T>(fn: (tx: Transaction) => T): T
  prepare(topic: string, payload: Payload, options?: PublishOptions): HalfMessage
  /** Commits the half message `id` (a no-op if it is committed already). */
  commitHalf(id: number): void
  /** Rolls back the half message `id` (kept for audit until retention removes it). */
  rollbackHalf(id: number): void
  setChecker(topic: string, checker: Checker): void
  removeChecker(topic: string): boolean
  runChecks(): Promise<number>
  halfMessages(options?: { state?: 'half' | 'rolled_back'; limit?: number }): MessageInfo[]
  deadLetters(group: string, options?: { limit?: number }): DeadLetter[]
  redrive(group: string, options?: { ids?: number[] }): number
  purgeDeadLetters(group: string, options?: { olderThanMs?: number }): number
  stats(): Stats
  topics(): TopicInfo[]
  /** `PRAGMA integrity_check` and the file's marks (reads every page, off the JS thread). */
  checkFile(): Promise<FileCheck>
  message(id: number): MessageInfo
  find(topic: string, key: string): MessageInfo[]
  purgeAcked(options?: { olderThanMs?: number }): Promise<number>
  /** Gives pages freed by purges back to the file system (all unless `pages` is given);
   *  resolves to the number of pages freed (0 for files created without auto-vacuum). */
  vacuum(options?: { pages?: number | null }): Promise<number>
}

/** A prepared statement of the caller's SQLite library (better-sqlite3's Statement,
 *  node:sqlite's StatementSync): publishIn / ackIn / inboxIn bind their parameters positionally. */
export interface SqlStatement {
  run(...params: any[]): unknown
  get(...params: any[]): unknown
}

/**
 * The caller's own SQLite connection on the queue's file: a better-sqlite3 `Database` or a
 * node:sqlite `DatabaseSync`. It must be inside a transaction (better-sqlite3
 * `inTransaction`, node:sqlite `isTransaction`; where node:sqlite has neither, a BEGIN that
 * is rolled back at once tells).
 */
export interface SqlConnection {
  prepare(sql: string): SqlStatement
  readonly inTransaction?: boolean
  readonly isTransaction?: boolean
  exec?(sql: string): unknown
}

export interface PublishInOptions extends PublishOptions {
  /** Its limits (maxPayload, idempotencyWindowMs) and clock apply; without it the
   *  defaults and SQLite's clock. */
  queue?: Queue
}

export interface AckInOptions {
  /** Its clock stamps the ack; without it SQLite's clock. */
  queue?: Queue
}

/**
 * Publishes on `db`, inside the transaction the caller opened (e.g. in better-sqlite3's
 * `db.transaction(() => ...)`): the message commits or rolls back with the caller's rows.
 * Checks as publish() does; returns the message id (the first id for a repeated
 * idempotencyKey). Outside a transaction: INVALID_ARGUMENT, nothing written. On a file
 * no Queue has opened: NOT_FOUND. Errors of the library are FerrymqErrors with the
 * original as `cause`.
 */
export declare function publishIn(
  db: SqlConnection,
  topic: string,
  payload: Payload,
  options?: PublishInOptions,
): number

/**
 * Acks `delivery` on `db`, inside the caller's transaction: the ack commits or rolls back
 * with the caller's rows. LEASE_LOST when the delivery is no longer held (throw it on, and
 * the caller's transaction rolls back).
 */
export declare function ackIn(db: SqlConnection, delivery: Delivery, options?: AckInOptions): void

export interface InboxInOptions extends InboxOptions {
  /** Its clock applies; without it SQLite's clock. */
  queue?: Queue
}

/**
 * The inbox (`tx.inbox`) on `db`, inside the caller's transaction: true the first time
 * `key` is seen within `windowMs` (default 7 days), false for a redelivery; the key is
 * remembered only if the caller's transaction commits. Outside a transaction:
 * INVALID_ARGUMENT, nothing written.
 */
export declare function inboxIn(db: SqlConnection, key: string, options?: InboxInOptions): boolean
