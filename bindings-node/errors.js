'use strict'
// FerrymqError and the one conversion of native errors to it.

const ERROR_CODES = Object.freeze([
  'INVALID_ARGUMENT',
  'NOT_FOUND',
  'LEASE_LOST',
  'CLOSED',
  'BUSY',
  'STORAGE',
  'CALLBACK',
  'FULL',
  'ENCRYPTION',
])

/** Every error ferrymq throws; `code` names its kind (see ERROR_CODES). */
class FerrymqError extends Error {
  constructor(code, message, options) {
    super(message, options)
    this.name = 'FerrymqError'
    this.code = code
  }
}

// The native module throws errors whose `code` is the kind (set in src/errors.rs). napi's
// own errors, thrown before our code runs, carry napi's status as their code: a value of
// the wrong JS type ("StringExpected", "InvalidArg", ...) is bad input; any other status is
// a failure inside the addon.
function convertError(e) {
  if (e instanceof FerrymqError || !(e instanceof Error)) return e
  const code = /** @type {{ code?: unknown }} */ (e).code
  const status = typeof code === 'string' ? code : ''
  if (ERROR_CODES.includes(status)) return new FerrymqError(status, e.message)
  if (status === 'InvalidArg' || status.endsWith('Expected')) {
    return new FerrymqError('INVALID_ARGUMENT', `invalid argument: ${e.message}`)
  }
  return new FerrymqError('STORAGE', `internal error in ferrymq (please report): ${e.message}`)
}

function invalid(message) {
  return new FerrymqError('INVALID_ARGUMENT', `invalid argument: ${message}`)
}

function call(f) {
  try {
    return f()
  } catch (e) {
    throw convertError(e)
  }
}

module.exports = { ERROR_CODES, FerrymqError, convertError, invalid, call }
