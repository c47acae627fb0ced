'use strict'
// Loads the native addon that `npm install` (scripts/build.js) built from the Rust crate.
const path = require('node:path')

const file = process.env.FERRYMQ_NODE_ADDON || path.join(__dirname, 'ferrymq.node')
try {
  module.exports = require(file)
} catch (e) {
  throw new Error(
    `ferrymq: cannot load the native addon ${file} (${e.message}). ` +
      'Build it with `npm install` (or `npm run build`) in the ferrymq package folder; it needs Rust (https://rustup.rs).',
  )
}
