'use strict'
// `npm install` / `npm run build`: compiles the Rust addon (crate ferrymq-node) with cargo
// into the workspace's target/ and copies it next to index.js as ferrymq.node.
// FERRYMQ_NODE_PROFILE=debug builds the unoptimised library instead of the release one.
const { execFileSync } = require('node:child_process')
const fs = require('node:fs')
const path = require('node:path')

const pkg = path.resolve(__dirname, '..')
const workspace = path.resolve(pkg, '..')
const profile = process.env.FERRYMQ_NODE_PROFILE === 'debug' ? 'debug' : 'release'
const cargo = process.env.CARGO || 'cargo'

const args = ['build', '--quiet', '-p', 'ferrymq-node', '--manifest-path', path.join(pkg, 'Cargo.toml')]
if (profile === 'release') args.push('--release')
try {
  execFileSync(cargo, args, { cwd: workspace, stdio: 'inherit' })
} catch (e) {
  if (e.code === 'ENOENT') {
    console.error('ferrymq: building the native addon needs Rust and cargo (https://rustup.rs).')
  }
  process.exit(1)
}

const targetDir =
  process.env.CARGO_TARGET_DIR ||
  JSON.parse(
    execFileSync(cargo, ['metadata', '--format-version', '1', '--no-deps'], { cwd: workspace }),
  ).target_directory
const libName = {
  linux: 'libferrymq_node.so',
  darwin: 'libferrymq_node.dylib',
  win32: 'ferrymq_node.dll',
}[process.platform]
if (libName === undefined) {
  console.error(`ferrymq: no build recipe for platform ${process.platform}`)
  process.exit(1)
}
const built = path.join(targetDir, profile, libName)
const dest = path.join(pkg, 'ferrymq.node')
// Copy to a temporary name and rename, so a running process never loads a half-written file.
fs.copyFileSync(built, `${dest}.tmp`)
fs.renameSync(`${dest}.tmp`, dest)
console.log(`ferrymq: built ${path.relative(process.cwd(), dest)} (${profile})`)
