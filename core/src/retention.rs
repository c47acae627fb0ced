//! Retention and file size: purging what is finished (acked messages, rolled-back half
//! messages past their audit period, expired idempotency and inbox keys), a chunk per
//! transaction, and giving free pages back to the file system.

use crate::clock::duration_to_ms;
use crate::error::{Error, Result};
use crate::inner::Inner;
use crate::store;
use crate::validate;
use std::sync::Arc;
use std::time::Duration;

/// Rows handled per transaction by purges.
const CHUNK: usize = 500;

/// Deletes messages published and acked by every group at least `older_than` ago,
/// half messages rolled back at least `older_than` ago (with their check history),
/// and idempotency and inbox keys past their window. Returns how many messages went.
pub(crate) fn purge_acked(inner: &Arc<Inner>, older_than: Duration) -> Result<u64> {
    validate::bounded_duration("older_than", older_than)?;
    let now = inner.now();
    let cutoff = now - duration_to_ms(older_than);
    let mut after = 0;
    let mut total = 0;
    loop {
        let chunk = inner.write(false, |c| {
            store::purge::acked_chunk(c, after, cutoff, CHUNK)
        })?;
        total += chunk.deleted;
        after = chunk.last_id;
        if chunk.done {
            break;
        }
    }
    loop {
        let n = inner.write(false, |c| store::purge::rolled_back_chunk(c, cutoff, CHUNK))?;
        total += n;
        if (n as usize) < CHUNK {
            break;
        }
    }
    while inner.write(false, |c| {
        store::purge::expired_idempotency_keys(c, now, CHUNK)
    })? as usize
        == CHUNK
    {}
    while inner.write(false, |c| store::inbox::expired_keys(c, now, CHUNK))? as usize == CHUNK {}
    Ok(total)
}

/// Gives pages freed by purges back to the file system: up to `pages` of them
/// (`None`: every free page), in transactions of at most 4,096 pages so publishers
/// wait little. Returns how many pages were freed; the file shrinks by that much once
/// the WAL is checkpointed (tried at once; a reader in the way delays it). Works on
/// files ferrymq created (`auto_vacuum = INCREMENTAL`); a file created before, or a
/// business database ferrymq adopted, keeps its mode and this returns 0: nothing went
/// wrong, SQLite cannot shrink such a file except by a full `VACUUM`.
pub(crate) fn vacuum(inner: &Arc<Inner>, pages: Option<u64>) -> Result<u64> {
    const VACUUM_CHUNK: u64 = 4096;
    if pages == Some(0) {
        return Err(Error::invalid(
            "pages must be at least 1 (leave it out to free every free page)",
        ));
    }
    let mut left = pages.unwrap_or(u64::MAX);
    let mut total = 0;
    while left > 0 {
        let chunk = left.min(VACUUM_CHUNK);
        let freed = inner.write(false, |c| store::schema::incremental_vacuum(c, chunk))?;
        total += freed;
        left -= freed.min(left);
        if freed < chunk {
            break;
        }
    }
    if total > 0 {
        store::schema::checkpoint(&*inner.conn()?)?;
    }
    Ok(total)
}
