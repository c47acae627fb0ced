'use strict'
// Node's way of forking: child_process.fork() (and cluster) start a fresh Node process,
// so a child inherits none of the parent's SQLite state. The pattern a Python user hits
// with os.fork() (a parent holding a queue with a checker forks workers that publish on
// the same file, then closes) must hold here too: every confirmed publish is in the file.
const test = require('node:test')
const assert = require('node:assert/strict')
const { fork } = require('node:child_process')
const fs = require('node:fs')
const path = require('node:path')
const { Queue, Resolution } = require('ferrymq')
const { tempDb } = require('./helpers.js')

const WORKERS = 8
const PUBLISHES = Number(process.env.FERRYMQ_FORK_PUBLISHES ?? '2000')

const WORKER = `
  const { Queue } = require(${JSON.stringify(path.join(__dirname, '..'))})
  const [db, me, n] = process.argv.slice(2)
  const q = new Queue(db)
  const ids = []
  for (let i = 0; i < Number(n); i++) ids.push(q.publish('jobs', me + '-' + i))
  q.close().then(() => process.send(ids, () => process.exit(0)))
`

test('workers forked by a parent that holds a queue lose no confirmed publish', async () => {
  const db = tempDb()
  const script = path.join(path.dirname(db), 'worker.js')
  fs.writeFileSync(script, WORKER)
  const parent = new Queue(db)
  parent.setChecker('jobs', async () => Resolution.COMMIT)
  parent.publish('jobs', 'from the parent')
  const workers = Array.from({ length: WORKERS }, (_, w) => {
    const child = fork(script, [db, String(w), String(PUBLISHES)], {
      stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
    })
    return new Promise((resolve, reject) => {
      /** @type {number[] | null} */
      let ids = null
      child.on('message', (m) => { ids = /** @type {number[]} */ (m) })
      child.on('error', reject)
      child.on('exit', (code) => (code === 0 && ids ? resolve(ids) : reject(new Error(`worker ${w} exited ${code}`))))
    })
  })
  // The parent closes while its workers publish.
  await parent.close()
  const confirmed = (await Promise.all(workers)).flat()
  assert.equal(confirmed.length, WORKERS * PUBLISHES)

  const q = new Queue(db)
  try {
    for (const id of confirmed) assert.equal(q.message(id).id, id)
    assert.equal(q.stats().topics.jobs.messages, WORKERS * PUBLISHES + 1)
  } finally {
    await q.close()
  }
})
