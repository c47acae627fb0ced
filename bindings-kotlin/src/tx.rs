//! The outbox transaction. The Kotlin layer's `queue.transaction { tx -> ... }` runs the
//! whole block on one thread and commits on return, rolls back on exception.

use crate::convert::{self, MessageArgs, PublishArgs, count, opt_secs};
use crate::delivery::FfiDelivery;
use crate::error::{FfiError, FfiResult};
use ferrymq::{Transaction, Value};
use std::sync::Mutex;

/// A SQL value of your own tables: a parameter of `execute`/`query`, or a result cell.
#[derive(uniffi::Enum, Debug, Clone, PartialEq)]
pub enum SqlValue {
    Null,
    Integer { value: i64 },
    Real { value: f64 },
    Text { value: String },
    Blob { value: Vec<u8> },
}

impl From<SqlValue> for Value {
    fn from(v: SqlValue) -> Self {
        match v {
            SqlValue::Null => Value::Null,
            SqlValue::Integer { value } => Value::Integer(value),
            SqlValue::Real { value } => Value::Real(value),
            SqlValue::Text { value } => Value::Text(value),
            SqlValue::Blob { value } => Value::Blob(value),
        }
    }
}

impl From<Value> for SqlValue {
    fn from(v: Value) -> Self {
        match v {
            Value::Null => SqlValue::Null,
            Value::Integer(value) => SqlValue::Integer { value },
            Value::Real(value) => SqlValue::Real { value },
            Value::Text(value) => SqlValue::Text { value },
            Value::Blob(value) => SqlValue::Blob { value },
        }
    }
}

#[derive(uniffi::Object)]
pub struct FfiTransaction {
    tx: Mutex<Transaction>,
}

impl FfiTransaction {
    pub fn new(tx: Transaction) -> Self {
        FfiTransaction { tx: Mutex::new(tx) }
    }

    fn with<T>(&self, f: impl FnOnce(&mut Transaction) -> ferrymq::Result<T>) -> FfiResult<T> {
        let mut tx = self.tx.lock().unwrap_or_else(|e| e.into_inner());
        f(&mut tx).map_err(FfiError::from)
    }
}

fn params(ps: Vec<SqlValue>) -> Vec<Value> {
    ps.into_iter().map(Into::into).collect()
}

#[uniffi::export]
impl FfiTransaction {
    /// Runs one statement of your SQL; returns rows changed.
    pub fn execute(&self, sql: String, params: Vec<SqlValue>) -> FfiResult<i64> {
        let ps = self::params(params);
        self.with(|tx| tx.execute(&sql, &ps)).map(count)
    }

    /// Runs one query of your SQL; returns every row.
    pub fn query(&self, sql: String, params: Vec<SqlValue>) -> FfiResult<Vec<Vec<SqlValue>>> {
        let ps = self::params(params);
        let rows = self.with(|tx| tx.query(&sql, &ps))?;
        Ok(rows
            .into_iter()
            .map(|r| r.into_iter().map(Into::into).collect())
            .collect())
    }

    pub fn publish(&self, topic: String, payload: Vec<u8>, options: PublishArgs) -> FfiResult<i64> {
        let o = options.into_core()?;
        self.with(|tx| tx.publish(&topic, &payload, o))
    }

    pub fn publish_batch(&self, messages: Vec<MessageArgs>) -> FfiResult<Vec<i64>> {
        let ms = convert::messages(messages)?;
        self.with(|tx| tx.publish_batch(&ms))
    }

    /// Acks in this transaction: `LeaseLost` here means the caller's writes roll back too.
    /// `delivery` is the handle of a `Received` (`InvalidArgument` for any other integer).
    /// The delivery is copied out of its lock before the write (see `FfiDelivery::snapshot`).
    pub fn ack(&self, delivery: u64) -> FfiResult<()> {
        let d = FfiDelivery::get(delivery)?.snapshot();
        self.with(|tx| tx.ack(&d))
    }

    pub fn nack(&self, delivery: u64, reason: String, delay_secs: Option<f64>) -> FfiResult<()> {
        let delay = opt_secs("delay", delay_secs)?;
        let d = FfiDelivery::get(delivery)?.snapshot();
        self.with(|tx| tx.nack(&d, &reason, delay))
    }

    pub fn inbox(&self, key: String, window_secs: Option<f64>) -> FfiResult<bool> {
        let window = opt_secs("window", window_secs)?;
        self.with(|tx| tx.inbox(&key, window))
    }

    pub fn commit(&self) -> FfiResult<()> {
        self.with(|tx| tx.commit())
    }

    pub fn rollback(&self) -> FfiResult<()> {
        self.with(|tx| tx.rollback())
    }

    pub fn is_open(&self) -> bool {
        self.tx.lock().unwrap_or_else(|e| e.into_inner()).is_open()
    }
}
