'use strict'
// Test-only helpers. A ManualClock passed as `new Queue(path, { testClock })` replaces
// the wall clock for that queue: delays, leases, retries and checks move only when the
// test moves it. Production code has no reason to import this module.
const native = require('./native.js')
const { call } = require('./errors.js')

const ManualClock = native.ManualClock
for (const name of ['advance', 'set']) {
  const raw = ManualClock.prototype[name]
  ManualClock.prototype[name] = function (ms) {
    call(() => raw.call(this, ms))
  }
}

module.exports.ManualClock = ManualClock
