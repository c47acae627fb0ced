// The ES module entry point: the same objects as index.js (one module instance, so
// `instanceof FerrymqError` holds across require and import).
export * from './index.js'
export { default } from './index.js'
