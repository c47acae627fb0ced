'use strict'
// Stages the npm packages of a release from bindings-node, without Rust:
//   node scripts/dist/node-package.js STAGE PLATFORM=ADDON...
// writes STAGE/ferrymq (the main package: the JS, the types, README, and package.json with
// the build-from-source parts removed and one optionalDependency per platform given) and
// STAGE/ferrymq-PLATFORM (bindings-node/npm/PLATFORM with the prebuilt addon as
// ferrymq.PLATFORM.node). `npm pack` of each folder makes the tarballs.
const fs = require('node:fs')
const path = require('node:path')

const [stage, ...pairs] = process.argv.slice(2)
if (!stage || pairs.length === 0) {
  console.error('usage: node-package.js STAGE PLATFORM=ADDON...')
  process.exit(2)
}
const src = path.resolve(__dirname, '../../bindings-node')
const pkg = JSON.parse(fs.readFileSync(path.join(src, 'package.json'), 'utf8'))

fs.rmSync(stage, { recursive: true, force: true })
const main = path.join(stage, 'ferrymq')
fs.mkdirSync(main, { recursive: true })

// The installed package is the JS layer only: no Rust sources, no install script (it would
// call cargo), no dev tools.
const fromSource = new Set(['scripts/build.js', 'Cargo.toml', 'build.rs', 'src'])
pkg.files = pkg.files.filter((f) => !fromSource.has(f))
for (const f of [...pkg.files, 'README.md']) {
  fs.mkdirSync(path.dirname(path.join(main, f)), { recursive: true })
  fs.copyFileSync(path.join(src, f), path.join(main, f))
}
pkg.files.push('README.md')
delete pkg.scripts
delete pkg.devDependencies
pkg.optionalDependencies = {}

for (const pair of pairs) {
  const [platform, addon] = pair.split('=')
  const from = path.join(src, 'npm', platform)
  const platformPkg = JSON.parse(fs.readFileSync(path.join(from, 'package.json'), 'utf8'))
  if (platformPkg.version !== pkg.version) {
    throw new Error(`${platformPkg.name} is ${platformPkg.version}, ferrymq is ${pkg.version}: run make check-version`)
  }
  const dir = path.join(stage, platformPkg.name)
  fs.mkdirSync(dir, { recursive: true })
  fs.copyFileSync(path.join(from, 'package.json'), path.join(dir, 'package.json'))
  fs.copyFileSync(path.join(from, 'README.md'), path.join(dir, 'README.md'))
  fs.copyFileSync(addon, path.join(dir, platformPkg.main))
  pkg.optionalDependencies[platformPkg.name] = pkg.version
}
fs.writeFileSync(path.join(main, 'package.json'), JSON.stringify(pkg, null, 2) + '\n')
