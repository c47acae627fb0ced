// The ES module entry point of ferrymq/testing: the same objects as testing.js.
export * from './testing.js'
export { default } from './testing.js'
