'use strict'
// OpenTelemetry on messages, when @opentelemetry/api is installed (an optional peer
// dependency; nothing changes without it): publishing inside an active span puts its W3C
// `traceparent` (and `tracestate`) in the message's headers unless the caller gave one;
// `delivery.withSpan(fn)` and `queue.worker` run a consumer span (kind CONSUMER, named
// "process <topic>", messaging semantic conventions) linked to the producer's context.
// Which headers, and whether a received traceparent is valid, is the core's
// (ferrymq::trace, through the native traceInject / traceExtract); this module only reads
// and writes OpenTelemetry span contexts.
const native = require('./native.js')

/** @type {typeof import('@opentelemetry/api') | null} */
let api = null
try {
  api = require('@opentelemetry/api')
} catch (e) {
  if (e.code !== 'MODULE_NOT_FOUND') throw e
}

const VERSION = require('./package.json').version

/** Publish options with the active span's context in `headers` (unchanged without one). */
function traced(opts) {
  if (api === null) return opts
  if (opts !== undefined && opts.headers != null && typeof opts.headers === 'object' && 'traceparent' in opts.headers) {
    return opts
  }
  const span = api.trace.getSpan(api.context.active())
  if (span === undefined) return opts
  const c = span.spanContext()
  if (!api.isSpanContextValid(c)) return opts
  const traceparent = `00-${c.traceId}-${c.spanId}-${(c.traceFlags & 0xff).toString(16).padStart(2, '0')}`
  const tracestate = c.traceState ? c.traceState.serialize() : undefined
  const headers = native.traceInject(opts?.headers ?? undefined, traceparent, tracestate || undefined)
  return { ...opts, headers }
}

/** The producer's SpanContext from a delivery's headers, or undefined. */
function producerContext(headers) {
  const p = native.traceExtract(headers)
  if (p === null || p === undefined) return undefined
  return {
    traceId: p.traceId,
    spanId: p.spanId,
    traceFlags: p.flags,
    isRemote: true,
    traceState: p.tracestate ? api.createTraceState(p.tracestate) : undefined,
  }
}

function ended(span, result) {
  span.end()
  return result
}

// Records what the handler threw and rethrows that very value: describing it must not
// throw in its place (String() of some objects does).
function failed(span, e) {
  let message = 'a thrown value that cannot be shown as text'
  try {
    message = e instanceof Error ? e.message : String(e)
  } catch {}
  if (e instanceof Error || typeof e === 'string') span.recordException(e)
  span.setStatus({ code: api.SpanStatusCode.ERROR, message })
  span.end()
  throw e
}

/**
 * Runs `fn(span)` inside the consumer span of `delivery` (this attempt): a child of the
 * active span if there is one, else of the producer's context; always linked to the
 * producer's context. A Promise from `fn` is awaited before the span ends; a throw or a
 * rejection is recorded on it. Without @opentelemetry/api, `fn(undefined)`.
 */
function withSpan(delivery, fn) {
  if (typeof fn !== 'function') throw new TypeError('withSpan takes a function (span) => ...')
  if (api === null) return fn(undefined)
  const producer = producerContext(delivery.headers)
  let parent = api.context.active()
  if (producer !== undefined && api.trace.getSpan(parent) === undefined) {
    parent = api.trace.setSpanContext(parent, producer)
  }
  const span = api.trace.getTracer('ferrymq', VERSION).startSpan(
    `process ${delivery.topic}`,
    {
      kind: api.SpanKind.CONSUMER,
      links: producer === undefined ? [] : [{ context: producer }],
      attributes: {
        'messaging.system': 'ferrymq',
        'messaging.operation.name': 'process',
        'messaging.operation.type': 'process',
        'messaging.destination.name': delivery.topic,
        'messaging.consumer.group.name': delivery.consumerGroup,
        'messaging.message.id': String(delivery.messageId),
        'messaging.ferrymq.attempt': delivery.attempt,
      },
    },
    parent,
  )
  return api.context.with(api.trace.setSpan(parent, span), () => {
    let result
    try {
      result = fn(span)
    } catch (e) {
      failed(span, e)
    }
    if (result !== null && typeof result === 'object' && typeof result.then === 'function') {
      return Promise.resolve(result).then(
        (r) => ended(span, r),
        (e) => failed(span, e),
      )
    }
    return ended(span, result)
  })
}

module.exports = { traced, withSpan }
