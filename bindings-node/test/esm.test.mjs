// The package works from ES modules too.
import test from 'node:test'
import assert from 'node:assert/strict'
import { Queue, FerrymqError, Resolution } from 'ferrymq'
import { ManualClock } from 'ferrymq/testing'
import os from 'node:os'
import path from 'node:path'
import fs from 'node:fs'

test('import { Queue } from "ferrymq"', async () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'ferrymq-esm-'))
  try {
    const q = new Queue(path.join(dir, 'q.db'), { testClock: new ManualClock(0) })
    q.subscribe('g', 't')
    q.publish('t', 'esm')
    const [d] = await q.receive('g')
    assert.equal(d.payload.toString(), 'esm')
    assert.equal(Resolution.COMMIT, 'commit')
    assert.ok(new FerrymqError('NOT_FOUND', 'x') instanceof Error)
    await q.close()
  } finally {
    fs.rmSync(dir, { recursive: true, force: true })
  }
})
