'use strict'
// Node rates for W1 (durable single publish) and W3 (receive+ack drain, one at a time)
// beside the Rust core's, measured in the same run (see docs/benchmarks.md).
//
// Run: make bench-node   (builds the addon and the Rust bench binary first)
const fs = require('node:fs')
const os = require('node:os')
const path = require('node:path')
const { execFileSync } = require('node:child_process')
const { Queue } = require('ferrymq')

const PAYLOAD = Buffer.alloc(256, 'x')

/** @param {string} dir @param {string} name */
function fresh(dir, name) {
  const q = new Queue(path.join(dir, name))
  q.subscribe('bench', 'bench')
  return q
}

/** @param {string} dir @param {number} n */
async function w1(dir, n) {
  const q = fresh(dir, 'w1.db')
  const start = process.hrtime.bigint()
  for (let i = 0; i < n; i++) q.publish('bench', PAYLOAD)
  const secs = Number(process.hrtime.bigint() - start) / 1e9
  await q.close()
  return n / secs
}

/** @param {string} dir @param {number} n */
async function w3(dir, n) {
  const q = fresh(dir, 'w3.db')
  for (let i = 0; i < n; i += 1000) {
    q.publishBatch(Array.from({ length: Math.min(1000, n - i) }, () => ({ topic: 'bench', payload: PAYLOAD })))
  }
  const start = process.hrtime.bigint()
  for (let i = 0; i < n; i++) {
    const [d] = await q.receive('bench')
    d.ack()
  }
  const secs = Number(process.hrtime.bigint() - start) / 1e9
  await q.close()
  return n / secs
}

/** @param {string} binary @param {string} kind @param {number} n */
function rust(binary, kind, n) {
  const out = execFileSync(binary, ['__run', kind, 'ferrymq', String(n), '0'], { encoding: 'utf8' })
  const fields = Object.fromEntries(out.trim().split(/\s+/).slice(1).map((kv) => kv.split('=')))
  return Number(fields.ops) / Number(fields.secs)
}

async function main() {
  const args = process.argv.slice(2)
  /** @param {string} name @param {string | undefined} fallback */
  const opt = (name, fallback) => {
    const i = args.indexOf(name)
    return i >= 0 ? args[i + 1] : fallback
  }
  const n = Number(opt('--n', '20000'))
  const repeat = Number(opt('--repeat', '3'))
  const binary = opt('--rust-bench', undefined)
  if (binary === undefined) throw new Error('usage: bench.js --rust-bench target/release/ferrymq-bench [--n N] [--repeat N]')
  const rows = []
  for (const [name, fn, kind] of /** @type {const} */ ([
    ['W1 durable publish', w1, 'publish'],
    ['W3 receive+ack drain', w3, 'drain'],
  ])) {
    let nodeBest = 0
    let rustBest = 0
    for (let r = 0; r < repeat; r++) {
      const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'ferrymq-bench-'))
      try {
        nodeBest = Math.max(nodeBest, await fn(dir, n))
      } finally {
        fs.rmSync(dir, { recursive: true, force: true })
      }
      rustBest = Math.max(rustBest, rust(binary, kind, n))
    }
    rows.push([name, nodeBest, rustBest])
  }
  const fmt = (/** @type {number} */ x) => Math.round(x).toLocaleString('en-US')
  console.log(`| workload (${n.toLocaleString('en-US')} msgs, best of ${repeat}) | Node | Rust | Node/Rust |`)
  console.log('|---|---:|---:|---:|')
  for (const [name, node, rs] of rows) {
    console.log(`| ${name} | ${fmt(Number(node))} ops/s | ${fmt(Number(rs))} ops/s | ${(Number(node) / Number(rs)).toFixed(2)} |`)
  }
}

main().catch((e) => {
  console.error(e)
  process.exit(1)
})
