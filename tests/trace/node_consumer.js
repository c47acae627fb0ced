// The Node consumer of the cross-language trace test (bindings-kotlin TracingTest): runs
// a worker of GROUP on DB until it has handled one delivery, with the OpenTelemetry SDK's
// in-memory exporter, and prints the trace id the handler saw as current and the
// consumer span's links, as JSON. Usage: node node_consumer.js DB GROUP
'use strict'
const path = require('node:path')
const { createRequire } = require('node:module')

// ferrymq and the OpenTelemetry packages from the Node package's own node_modules, so
// that both see one @opentelemetry/api.
const pkg = path.join(__dirname, '..', '..', 'bindings-node')
const req = createRequire(path.join(pkg, 'package.json'))
const api = req('@opentelemetry/api')
const { AsyncLocalStorageContextManager } = req('@opentelemetry/context-async-hooks')
const { BasicTracerProvider, InMemorySpanExporter, SimpleSpanProcessor } = req('@opentelemetry/sdk-trace-base')
const { Queue } = require(pkg)

const exporter = new InMemorySpanExporter()
api.context.setGlobalContextManager(new AsyncLocalStorageContextManager().enable())
api.trace.setGlobalTracerProvider(new BasicTracerProvider({ spanProcessors: [new SimpleSpanProcessor(exporter)] }))

async function main () {
  const [db, group] = process.argv.slice(2)
  const q = new Queue(db)
  const seen = []
  const worker = q.worker(group, async () => {
    seen.push(api.trace.getActiveSpan()?.spanContext().traceId ?? 'none')
    worker.stop()
  })
  await worker.done
  await q.close()
  const spans = exporter.getFinishedSpans().filter((s) => s.kind === api.SpanKind.CONSUMER)
  console.log(JSON.stringify({
    seen,
    spans: spans.map((s) => ({
      name: s.name,
      traceId: s.spanContext().traceId,
      links: s.links.map((l) => [l.context.traceId, l.context.spanId])
    }))
  }))
}

main().catch((e) => { console.error(e); process.exit(1) })
