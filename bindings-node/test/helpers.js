'use strict'
// Shared test helpers: a fresh queue file per test, a manual clock, child processes.
const fs = require('node:fs')
const os = require('node:os')
const path = require('node:path')
const { spawn } = require('node:child_process')
const { Queue } = require('ferrymq')
const { ManualClock } = require('ferrymq/testing')

const START_MS = 1_700_000_000_000

/** @type {string[]} */
const dirs = []
process.on('exit', () => {
  for (const dir of dirs) fs.rmSync(dir, { recursive: true, force: true })
})

/** A path for a fresh queue file, removed with its directory when the process exits. */
function tempDb(name = 'q.db') {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'ferrymq-node-'))
  dirs.push(dir)
  return path.join(dir, name)
}

/**
 * A queue on a fresh file whose clock moves only when the test moves it.
 * @param {import('ferrymq').QueueOptions} [options]
 */
function clockedQueue(options = {}) {
  const clock = new ManualClock(START_MS)
  const db = tempDb()
  const q = new Queue(db, { ...options, testClock: clock })
  return { q, clock, db }
}

/**
 * Runs `node -e code args...` (or `command -c code args...`, or `command args...` when code
 * is null); `done` resolves with { code, signal, stdout, stderr }.
 * @param {string | null} code
 * @param {string[]} args
 * @param {{ onLine?: (line: string) => void, command?: string }} [opts]
 */
function run(code, args, opts = {}) {
  const command = opts.command ?? process.execPath
  // node -e CODE, python -c CODE, or (no code) a program of its own
  const argv = code === null ? args : command === process.execPath ? ['-e', code, '--', ...args] : ['-c', code, ...args]
  const child = spawn(command, argv, {
    cwd: path.join(__dirname, '..'),
    stdio: ['ignore', 'pipe', 'pipe'],
  })
  let stdout = ''
  let stderr = ''
  let partial = ''
  child.stdout.on('data', (b) => {
    stdout += b
    partial += b
    let i
    while ((i = partial.indexOf('\n')) >= 0) {
      opts.onLine?.(partial.slice(0, i))
      partial = partial.slice(i + 1)
    }
  })
  child.stderr.on('data', (b) => {
    stderr += b
  })
  /** @type {Promise<{ code: number | null, signal: NodeJS.Signals | null, stdout: string, stderr: string }>} */
  const done = new Promise((resolve, reject) => {
    child.on('error', reject)
    child.on('close', (exitCode, signal) => resolve({ code: exitCode, signal, stdout, stderr }))
  })
  return { child, done }
}

/**
 * Resolves when `pred()` is true, checking every 5 ms; rejects after `ms`.
 * @param {() => boolean} pred
 */
async function until(pred, ms = 10_000) {
  const end = Date.now() + ms
  while (!pred()) {
    if (Date.now() > end) throw new Error('timed out waiting for a condition')
    await new Promise((r) => setTimeout(r, 5))
  }
}

module.exports = { tempDb, clockedQueue, run, until, START_MS }
