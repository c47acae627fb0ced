'use strict'
// Schedules through the binding: everyMs / startAt (a Date or epoch ms) in, nextAt as a
// Date and `every` (milliseconds) out, and the error codes. The core decides what a tick gives
// (tests/scenarios/schedule.json runs here too).
const test = require('node:test')
const assert = require('node:assert/strict')
const { FerrymqError } = require('ferrymq')
const { clockedQueue, START_MS } = require('./helpers.js')

/** @param {string} code */
const is = (code) => (/** @type {any} */ e) => e instanceof FerrymqError && e.code === code

test('schedule takes Dates and ms and schedules() gives Dates back', async () => {
  const { q, clock } = clockedQueue()
  q.subscribe('g', 't')
  q.schedule('a', 't', 'x', { everyMs: 60_000, startAt: new Date(START_MS + 5000), repeat: 2, missed: 'catch_up', headers: { h: 'v' }, tag: 'tick' })
  q.schedule('b', 't', Buffer.from('y'), { everyMs: 90_000, delayMs: 30_000 })
  q.schedule('c', 't', 'z', { cron: '30 8 * * MON-FRI', tz: 'Europe/Paris', startAt: START_MS })
  const [a, b, c] = q.schedules()
  assert.ok(a.nextAt instanceof Date)
  assert.equal(a.nextAt.getTime(), START_MS + 5000)
  assert.deepEqual([a.every, a.repeatLeft, a.missed, a.tag, a.headers, a.cron, a.tz], [60_000, 2, 'catch_up', 'tick', { h: 'v' }, null, null])
  assert.deepEqual([b.nextAt.getTime(), b.missed, b.repeatLeft], [START_MS + 30_000, 'once', null])
  assert.deepEqual([c.cron, c.tz, c.every], ['30 8 * * MON-FRI', 'Europe/Paris', null])
  clock.advance(5000)
  const [d] = await q.receive('g', { max: 10 })
  assert.equal(d.payload.toString(), 'x')
  assert.equal(d.headers['ferrymq-tick'], String(START_MS + 5000))
  await q.close()
})

test('bad schedules throw INVALID_ARGUMENT and change nothing; unknown names NOT_FOUND', async () => {
  const { q } = clockedQueue()
  for (const o of [{ cron: '61 * * * *' }, { cron: '0 * * * *', tz: 'Mars/Olympus' }, {}, { cron: '* * * * *', everyMs: 1 },
    { everyMs: 0 }, { everyMs: -5 }, { everyMs: 1, repeat: 0 }, { everyMs: 1, missed: 'sometimes' }, { everyMs: 1, startAt: 'soon' },
    { everyMs: 1, when: 'typo' }]) {
    assert.throws(() => q.schedule('s', 't', 'x', /** @type {any} */ (o)), is('INVALID_ARGUMENT'), JSON.stringify(o))
  }
  assert.throws(() => q.schedule('', 't', 'x', { everyMs: 1 }), is('INVALID_ARGUMENT'))
  assert.deepEqual(q.schedules(), [])
  assert.throws(() => q.unschedule('nope'), is('NOT_FOUND'))
  await q.close()
})
