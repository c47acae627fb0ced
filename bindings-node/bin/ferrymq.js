#!/usr/bin/env node
'use strict'
// The `ferrymq` command of the npm package: the operator command (the Rust crate
// ferrymq-cli) linked into the addon, so no second binary is needed. It writes to file
// descriptors 1 and 2 itself and blocks this thread until done; Ctrl-C ends the process
// as it ends the Rust binary (Node's default SIGINT action).
const native = require('../native.js')

process.exitCode = native.cliMain(process.argv.slice(2))
