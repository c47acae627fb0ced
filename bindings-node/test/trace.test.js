'use strict'
// W3C trace propagation (OpenTelemetry) and the package's `ferrymq` bin.
const test = require('node:test')
const assert = require('node:assert/strict')
const path = require('node:path')
const { spawnSync } = require('node:child_process')
const api = require('@opentelemetry/api')
const { AsyncLocalStorageContextManager } = require('@opentelemetry/context-async-hooks')
const { BasicTracerProvider, InMemorySpanExporter, SimpleSpanProcessor } = require('@opentelemetry/sdk-trace-base')
const { Queue, RetryPolicy } = require('ferrymq')
const { tempDb, run } = require('./helpers.js')

const exporter = new InMemorySpanExporter()
api.context.setGlobalContextManager(new AsyncLocalStorageContextManager().enable())
api.trace.setGlobalTracerProvider(new BasicTracerProvider({ spanProcessors: [new SimpleSpanProcessor(exporter)] }))
const tracer = api.trace.getTracer('test')
const ROOT = path.join(__dirname, '..', '..')

/** @param {import('@opentelemetry/api').Span} span */
function traceparent(span) {
  const c = span.spanContext()
  return `00-${c.traceId}-${c.spanId}-0${c.traceFlags}`
}

function consumerSpans() {
  return exporter.getFinishedSpans().filter((s) => s.kind === api.SpanKind.CONSUMER)
}

test('publishing inside a span sets traceparent on every publish path', async () => {
  const q = new Queue(tempDb())
  q.subscribe('g', 't')
  const expected = await tracer.startActiveSpan('producer', async (span) => {
    q.publish('t', 'one')
    await q.publishAsync('t', 'two')
    q.publishBatch([{ topic: 't', payload: 'three' }])
    q.transaction((tx) => tx.publish('t', 'four'))
    span.end()
    return traceparent(span)
  })
  const got = await q.receive('g', { max: 10, waitMs: 1000 })
  assert.deepEqual(got.map((d) => d.payload.toString()), ['one', 'two', 'three', 'four'])
  for (const d of got) assert.deepEqual(d.headers, { traceparent: expected })
  await q.close()
})

test('no span, no header; a caller traceparent is kept', async () => {
  const q = new Queue(tempDb())
  q.subscribe('g', 't')
  q.publish('t', 'no span', { headers: { a: 'b' } })
  const own = '00-0123456789abcdef0123456789abcdef-0123456789abcdef-00'
  tracer.startActiveSpan('producer', (span) => {
    q.publish('t', 'own', { headers: { traceparent: own } })
    span.end()
  })
  const got = await q.receive('g', { max: 10, waitMs: 1000 })
  assert.deepEqual(got.map((d) => d.headers), [{ a: 'b' }, { traceparent: own }])
  await q.close()
})

test('withSpan: a consumer span linked to the producer; a retry is a new span', async () => {
  exporter.reset()
  const q = new Queue(tempDb())
  q.subscribe('g', 't', { retry: RetryPolicy.fixed([0]) })
  /** @type {import('@opentelemetry/api').SpanContext} */
  let pc = api.INVALID_SPAN_CONTEXT
  const id = tracer.startActiveSpan('producer', (span) => {
    pc = span.spanContext()
    span.end()
    return q.publish('t', 'x')
  })
  const [d] = await q.receive('g', { waitMs: 1000 })
  const r = await d.withSpan(async (span) => {
    assert.equal(api.trace.getActiveSpan(), span)
    d.nack('again')
    return 7
  })
  assert.equal(r, 7)
  const [first] = consumerSpans()
  assert.equal(first.name, 'process t')
  assert.deepEqual(first.attributes, {
    'messaging.system': 'ferrymq',
    'messaging.operation.name': 'process',
    'messaging.operation.type': 'process',
    'messaging.destination.name': 't',
    'messaging.consumer.group.name': 'g',
    'messaging.message.id': String(id),
    'messaging.ferrymq.attempt': 1,
  })
  assert.deepEqual(first.links.map((l) => [l.context.traceId, l.context.spanId]), [[pc.traceId, pc.spanId]])
  assert.equal(first.spanContext().traceId, pc.traceId)
  assert.equal(first.parentSpanContext?.spanId, pc.spanId)

  const [retry] = await q.receive('g', { waitMs: 1000 })
  assert.equal(retry.attempt, 2)
  assert.throws(() =>
    retry.withSpan(() => {
      throw new Error('boom')
    }),
  )
  retry.ack()
  const second = consumerSpans()[1]
  assert.equal(second.attributes['messaging.ferrymq.attempt'], 2)
  assert.notEqual(second.spanContext().spanId, first.spanContext().spanId)
  assert.deepEqual(second.links.map((l) => l.context.traceId), [pc.traceId])
  assert.equal(second.status.code, api.SpanStatusCode.ERROR)
  await q.close()
})

test('a Node consumer of a Python producer: the worker span carries the Python trace id', async () => {
  const python = process.env.FERRYMQ_PYTHON
  assert.ok(python, 'FERRYMQ_PYTHON must name a Python with the ferrymq wheel and opentelemetry-sdk (make test sets it)')
  exporter.reset()
  const db = tempDb()
  const producer = run(null, [path.join(ROOT, 'tests', 'trace', 'python_producer.py'), db, 'orders', 'node'], {
    command: python,
  })
  const out = await producer.done
  assert.equal(out.code, 0, out.stderr)
  const [traceId, spanId] = out.stdout.trim().split(' ')
  const q = new Queue(db)
  /** @type {string[]} */
  const seen = []
  const worker = q.worker('node', async (d) => {
    seen.push(api.trace.getActiveSpan()?.spanContext().traceId ?? 'none')
    worker.stop()
  })
  await worker.done
  assert.deepEqual(seen, [traceId])
  const [span] = consumerSpans()
  assert.equal(span.name, 'process orders')
  assert.deepEqual(span.links.map((l) => [l.context.traceId, l.context.spanId]), [[traceId, spanId]])
  assert.equal(span.spanContext().traceId, traceId)
  await q.close()
})

const BIN = path.join(__dirname, '..', 'bin', 'ferrymq.js')

test('the ferrymq bin: --version, stats --json, a bad command', async () => {
  const pkg = JSON.parse(require('node:fs').readFileSync(path.join(__dirname, '..', 'package.json'), 'utf8'))
  const version = spawnSync(process.execPath, [BIN, '--version'], { encoding: 'utf8' })
  assert.equal(version.status, 0, version.stderr)
  assert.equal(version.stdout.trim(), `ferrymq ${pkg.version}`)

  const db = tempDb()
  const q = new Queue(db)
  q.subscribe('g', 't')
  q.publish('t', 'x')
  await q.close()
  const stats = spawnSync(process.execPath, [BIN, '--db', db, 'stats', '--json'], { encoding: 'utf8' })
  assert.equal(stats.status, 0, stats.stderr)
  const groups = JSON.parse(stats.stdout).groups
  assert.equal(groups.find((/** @type {{name: string}} */ g) => g.name === 'g').ready, 1)

  const bad = spawnSync(process.execPath, [BIN, 'no-such-command'], { encoding: 'utf8' })
  assert.equal(bad.status, 2)
  assert.match(bad.stderr, /no-such-command/)
  assert.equal(bad.stdout, '')
})

test('without @opentelemetry/api nothing changes', async () => {
  const db = tempDb()
  const code = `
const Module = require('node:module')
const resolve = Module._resolveFilename
Module._resolveFilename = function (request, ...rest) {
  if (request === '@opentelemetry/api') {
    const e = new Error("Cannot find module '@opentelemetry/api'")
    e.code = 'MODULE_NOT_FOUND'
    throw e
  }
  return resolve.call(this, request, ...rest)
}
const { Queue } = require('ferrymq')
const q = new Queue(process.argv[1])
q.subscribe('g', 't')
q.publish('t', 'x')
q.receive('g', { waitMs: 1000 }).then(async ([d]) => {
  const r = d.withSpan((span) => { d.ack(); return span === undefined ? 'no span' : 'span' })
  console.log(JSON.stringify({ headers: d.headers, r }))
  await q.close()
})`
  const out = await run(code, [db]).done
  assert.equal(out.code, 0, out.stderr)
  assert.deepEqual(JSON.parse(out.stdout), { headers: {}, r: 'no span' })
})

test('Ctrl-C ends the ferrymq bin', async () => {
  const db = tempDb()
  const q = new Queue(db)
  q.subscribe('g', 't')
  q.publish('t', 'x')
  await q.close()
  const { spawn } = require('node:child_process')
  const child = spawn(process.execPath, [BIN, '--db', db, 'tail', 't', '--from-id', '0', '--json'], {
    stdio: ['ignore', 'pipe', 'inherit'],
  })
  // `tail` follows until Ctrl-C; once it printed the message it is inside the Rust loop.
  await new Promise((resolve) => child.stdout.once('data', resolve))
  const exited = new Promise((resolve) => child.on('exit', (code, signal) => resolve({ code, signal })))
  child.kill('SIGINT')
  assert.deepEqual(await exited, { code: null, signal: 'SIGINT' })
})
