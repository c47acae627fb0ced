//! The outbox transaction behind `q.transaction((tx) => ...)`. `index.js` commits when
//! the callback returns and rolls back when it throws; this holds the open transaction.

use crate::convert::{self, BatchMessage, Payload, PublishOpts, SqlOut, SqlParam};
use crate::delivery::{Delivery, NackOpts};
use crate::errors::{OrJs, Result, invalid};
use napi_derive::napi;

#[napi(object)]
pub struct InboxOpts {
    pub window_ms: Option<f64>,
}

#[napi]
pub struct Transaction {
    pub(crate) tx: Option<ferrymq::Transaction>,
}

impl Transaction {
    fn open(&mut self) -> Result<&mut ferrymq::Transaction> {
        match self.tx.as_mut() {
            Some(tx) if tx.is_open() => Ok(tx),
            _ => Err(invalid(
                "the transaction has ended: use tx only inside its q.transaction() callback",
            )),
        }
    }
}

#[napi]
impl Transaction {
    /// Runs one statement with bound parameters; returns the number of rows changed.
    #[napi]
    pub fn execute(&mut self, sql: String, params: Option<Vec<SqlParam>>) -> Result<i64> {
        let params = convert::sql_params(params)?;
        let n = self.open()?.execute(&sql, &params).js()?;
        Ok(n as i64)
    }

    #[napi]
    pub fn query(
        &mut self,
        sql: String,
        params: Option<Vec<SqlParam>>,
    ) -> Result<Vec<Vec<SqlOut>>> {
        let params = convert::sql_params(params)?;
        let rows = self.open()?.query(&sql, &params).js()?;
        Ok(rows
            .into_iter()
            .map(|r| r.into_iter().map(convert::sql_out).collect())
            .collect())
    }

    #[napi]
    pub fn publish(
        &mut self,
        topic: String,
        payload: Payload,
        opts: Option<PublishOpts>,
    ) -> Result<i64> {
        let options = convert::publish_options(opts)?;
        self.open()?
            .publish(&topic, convert::payload(&payload), options)
            .js()
    }

    #[napi]
    pub fn publish_batch(&mut self, messages: Vec<BatchMessage>) -> Result<Vec<i64>> {
        let batch = convert::messages(messages)?;
        self.open()?.publish_batch(&batch).js()
    }

    #[napi]
    pub fn ack(&mut self, delivery: &Delivery) -> Result<()> {
        let tx = self.open()?;
        delivery.read(|d| tx.ack(d)).js()
    }

    #[napi]
    pub fn nack(
        &mut self,
        delivery: &Delivery,
        reason: Option<String>,
        opts: Option<NackOpts>,
    ) -> Result<()> {
        let delay = convert::opt_ms("delayMs", opts.and_then(|o| o.delay_ms))?;
        let tx = self.open()?;
        delivery
            .read(|d| tx.nack(d, reason.as_deref().unwrap_or(""), delay))
            .js()
    }

    /// The inbox: true the first time `key` is seen within `windowMs` (default a week),
    /// false for a redelivery; remembered only if the transaction commits.
    #[napi]
    pub fn inbox(&mut self, key: String, opts: Option<InboxOpts>) -> Result<bool> {
        let window = convert::opt_ms("windowMs", opts.and_then(|o| o.window_ms))?;
        self.open()?.inbox(&key, window).js()
    }

    #[napi]
    pub fn commit(&mut self) -> Result<()> {
        self.open()?.commit().js()
    }

    #[napi]
    pub fn rollback(&mut self) -> Result<()> {
        self.open()?.rollback().js()
    }

    #[napi(getter)]
    pub fn is_open(&self) -> bool {
        self.tx.as_ref().is_some_and(|t| t.is_open())
    }
}
