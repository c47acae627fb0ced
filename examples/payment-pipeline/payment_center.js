'use strict'
// The payment center (Node): pays each `orders/created` through a simulated third-party
// bank that is slow sometimes and fails sometimes. The `payments/paid` message is a half
// message: prepared before the bank call, committed after it, rolled back if the bank
// refuses. A process killed between the two leaves it undecided; the checker (in any
// live payment center) asks the bank and commits or rolls back. A failure nacks the
// order, which is retried on the group's schedule and dead-lettered past the last retry.
//
// Usage: node payment_center.js DB FAIL_RATE     Stops when its stdin closes.
// With FERRYMQ_KEY_FILE set the file is encrypted; its keys are read from that file (one
// per line, newest first) whenever the queue needs them.
const { readFileSync } = require('node:fs')
const { Queue, Resolution } = require('ferrymq')

const [db, failRate = '0.15'] = process.argv.slice(2)
// Fault injection: die by SIGKILL right after the bank charged this order, before the
// half message is committed and the order acked.
const crashAfterCharge = process.env.CRASH_AFTER_CHARGE
const keyFile = process.env.FERRYMQ_KEY_FILE
const key = keyFile ? () => readFileSync(keyFile, 'utf8').split('\n').filter(Boolean) : undefined
const q = new Queue(db, { checkAfterMs: 2000, checkIntervalMs: 1000, key })
const sleep = (ms) => new Promise((r) => setTimeout(r, ms))

// The bank keeps its own books (a table standing for another company's system, written in
// its own transactions) and, like Alipay's and WeChat Pay's APIs, charges one
// out_trade_no at most once.
const bank = {
  charged(outTradeNo) {
    return q.transaction((tx) => tx.query('SELECT 1 FROM bank_charges WHERE out_trade_no = ?', [outTradeNo])).length > 0
  },
  async charge(outTradeNo, amount) {
    if (Math.random() < 0.1) await sleep(50 + Math.random() * 250)
    if (Math.random() < Number(failRate)) throw new Error('bank: gateway timeout')
    q.transaction((tx) =>
      tx.execute('INSERT OR IGNORE INTO bank_charges(out_trade_no, amount) VALUES (?, ?)', [outTradeNo, amount]),
    )
  },
}

q.setChecker('payments', (info) => (bank.charged(info.key) ? Resolution.COMMIT : Resolution.ROLLBACK))

async function pay(d) {
  const order = JSON.parse(d.payload.toString())
  if (!(order.amount > 0)) throw new Error(`refused: amount ${order.amount} cannot be paid`)
  const key = `order-${order.order_id}`
  // A redelivered order finds the half message of its earlier attempt by the key.
  const h = q.prepare('payments', JSON.stringify(order), { tag: 'paid', key, idempotencyKey: `paid/${key}` })
  if (!bank.charged(key)) {
    try {
      await bank.charge(key, order.amount)
    } catch (e) {
      try {
        h.rollback()
      } catch {
        // already decided by a checker; the retry sorts it out
      }
      throw e
    }
    if (key === crashAfterCharge) process.kill(process.pid, 'SIGKILL')
  }
  h.commit()
}

const worker = q.worker('payment-center', pay, { concurrency: 4, waitMs: 200 })
console.log('payment center ready')
process.stdin.resume()
process.stdin.on('end', async () => {
  await worker.stop()
  await q.close()
})
