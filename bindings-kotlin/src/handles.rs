//! The registries behind the integer handles that cross to Kotlin (`Received::handle`,
//! `FfiQueue::fast_handle`). A handle is an id, never a pointer: creating one registers
//! the object under a fresh id, releasing removes it, and every use looks the id up
//! under the registry's lock and takes its own reference before the lock is released.
//! So any integer is safe to pass, through the structure-free calls of `crate::fast` and
//! the uniffi exports alike: 0, a released handle, or one never handed out is
//! `InvalidArgument`, and a release racing a call only makes later calls fail.
//!
//! Ids come from one counter shared by every kind of handle and are never reused, so a
//! stale handle never names another object.

use crate::error::{FfiError, FfiResult};
use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{LazyLock, Mutex, MutexGuard};

static NEXT: AtomicU64 = AtomicU64::new(1);

pub struct Registry<T> {
    /// What the handles name, for the error: "delivery", "queue".
    what: &'static str,
    map: LazyLock<Mutex<HashMap<u64, T>>>,
}

impl<T> Registry<T> {
    pub const fn new(what: &'static str) -> Self {
        Registry {
            what,
            map: LazyLock::new(|| Mutex::new(HashMap::new())),
        }
    }

    fn map(&self) -> MutexGuard<'_, HashMap<u64, T>> {
        self.map.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Registers `value` under a fresh id and returns the id.
    pub fn insert(&self, value: T) -> u64 {
        let id = NEXT.fetch_add(1, Ordering::Relaxed);
        self.map().insert(id, value);
        id
    }

    /// Unregisters `id` (a no-op when unknown) and returns what it held, dropped by the
    /// caller after the lock is released.
    pub fn remove(&self, id: u64) -> Option<T> {
        self.map().remove(&id)
    }

    /// How many handles are registered.
    pub fn len(&self) -> usize {
        self.map().len()
    }

    /// What `id` names, as `get` makes it (a clone of an `Arc`, an upgraded `Weak`) while
    /// the lock is held; `InvalidArgument` when `id` is unknown, released, or `get` gives
    /// nothing.
    pub fn get<R>(&self, id: u64, get: impl FnOnce(&T) -> Option<R>) -> FfiResult<R> {
        let found = self.map().get(&id).and_then(get);
        found.ok_or_else(|| {
            FfiError::invalid(format!("unknown or released {} handle: {id}", self.what))
        })
    }
}
