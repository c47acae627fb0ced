'use strict'
// The README examples run as written, from an app folder where the package is installed.
const test = require('node:test')
const assert = require('node:assert/strict')
const fs = require('node:fs')
const path = require('node:path')
const { spawnSync } = require('node:child_process')
const { tempDb } = require('./helpers.js')

const PKG = path.join(__dirname, '..')
const ROOT = path.join(PKG, '..')

/** @param {string} file */
function jsBlocks(file) {
  return [...fs.readFileSync(file, 'utf8').matchAll(/```js\n([\s\S]*?)```/g)].map((m) => m[1])
}

/** An app folder with node_modules/ferrymq linked to this package, as `npm install <folder>` leaves it. */
function app() {
  const dir = path.dirname(tempDb())
  fs.mkdirSync(path.join(dir, 'node_modules'))
  fs.symlinkSync(PKG, path.join(dir, 'node_modules', 'ferrymq'), 'dir')
  return dir
}

/** @param {string} dir @param {string} file @param {string} code */
function runIn(dir, file, code) {
  fs.writeFileSync(path.join(dir, file), code)
  return spawnSync(process.execPath, [file], { cwd: dir, encoding: 'utf8', timeout: 60_000 })
}

test('the package README example runs', () => {
  const [example] = jsBlocks(path.join(PKG, 'README.md'))
  const dir = app()
  const r = runIn(dir, 'example.js', example)
  assert.equal(r.status, 0, r.stderr)
  assert.match(r.stdout, /paying order-42 \{"order": 42\}/)
  assert.match(r.stdout, /ready: 0/)
  assert.ok(fs.existsSync(path.join(dir, 'bank.db')))
})

test('the top README Node examples run: the queue, then publishIn on better-sqlite3', () => {
  const blocks = jsBlocks(path.join(ROOT, 'README.md'))
  assert.equal(blocks.length, 2)
  for (const b of blocks) assert.ok(b.trim().split('\n').length <= 12)
  const dir = app()
  fs.symlinkSync(path.join(PKG, 'node_modules', 'better-sqlite3'), path.join(dir, 'node_modules', 'better-sqlite3'), 'dir')
  const r = runIn(dir, 'example.mjs', blocks[0])
  assert.equal(r.status, 0, r.stderr)
  assert.match(r.stdout, /paid order-42/)
  const s = runIn(dir, 'publish_in.mjs', blocks[1])
  assert.equal(s.status, 0, s.stderr)
  assert.match(s.stdout, /published 2/)
})
