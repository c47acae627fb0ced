'use strict'
// Loads the native addon, in this order (the napi-rs layout):
//   1. FERRYMQ_NODE_ADDON, a path to a .node file, when set (tests and debugging);
//   2. the platform package `ferrymq-<platform>` (e.g. ferrymq-linux-x64-gnu), which npm
//      installs from the published package's optionalDependencies: no Rust needed;
//   3. ./ferrymq.node, built in the source tree by `npm install` / `npm run build`.
// If none loads, the error names the platform and what to do.
const path = require('node:path')

/** `linux-x64-gnu`, `linux-arm64-musl`, `darwin-arm64`, `win32-x64-msvc`, ... */
function platformName() {
  const { platform, arch } = process
  if (platform === 'linux') return `linux-${arch}-${isMusl() ? 'musl' : 'gnu'}`
  if (platform === 'win32') return `win32-${arch}-msvc`
  return `${platform}-${arch}`
}

// glibc reports its version in the process report; musl (Alpine) does not.
function isMusl() {
  try {
    const report = process.report && process.report.getReport()
    return !(report && report.header && report.header.glibcVersionRuntime)
  } catch {
    return false
  }
}

function load() {
  if (process.env.FERRYMQ_NODE_ADDON) return require(process.env.FERRYMQ_NODE_ADDON)
  const platform = platformName()
  const pkg = `ferrymq-${platform}`
  const local = path.join(__dirname, 'ferrymq.node')
  const tried = []
  for (const candidate of [pkg, local]) {
    try {
      return require(candidate)
    } catch (e) {
      // A missing candidate is expected; any other failure (wrong libc, corrupt file) is
      // the interesting one and must reach the user verbatim.
      const missing = e.code === 'MODULE_NOT_FOUND' && String(e.message).includes(candidate)
      tried.push(`${candidate}: ${missing ? (candidate === pkg ? 'not installed' : 'not built') : e.message}`)
    }
  }
  throw new Error(
    `ferrymq: no native addon for this platform (${platform}). Tried ${tried.join('; ')}. ` +
      `Installed from npm, ferrymq loads the optional dependency ${pkg}: reinstall without ` +
      '--omit=optional / --no-optional, and check that a prebuilt package exists for ' +
      `${platform} (see the README's install section). In the source tree, build the addon ` +
      'with `npm install` (or `npm run build`) in bindings-node; it needs Rust (https://rustup.rs).',
  )
}

module.exports = load()
