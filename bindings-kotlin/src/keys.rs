//! Encryption at rest from Kotlin: keys and key providers as the core's `Key` and key
//! source. Which key opens the file, rotation and every failure are the core's
//! (`ferrymq::cipher`); nothing here prints or logs a key.

use crate::error::FfiResult;
use ferrymq::Key;
use std::sync::Arc;

/// A key, checked when made (a raw key of other than 32 bytes, a passphrase of 0 or over
/// 1,024 bytes: `InvalidArgument`). An object rather than a record so that the generated
/// Kotlin's `toString` has no field to show.
#[derive(uniffi::Object)]
pub struct FfiKey {
    pub(crate) key: Key,
}

#[uniffi::export]
impl FfiKey {
    /// SQLCipher's raw key syntax `x'<64 hex digits>'` is a raw key, any other text a
    /// passphrase (`ferrymq::Key::from_text`).
    #[uniffi::constructor]
    pub fn from_text(text: String) -> FfiResult<Arc<Self>> {
        let key = Key::from_text(&text);
        wipe(text.into_bytes());
        Ok(Arc::new(FfiKey { key: key? }))
    }

    /// 32 raw bytes (a data key from a KMS or HSM), used as they are.
    #[uniffi::constructor]
    pub fn raw(bytes: Vec<u8>) -> FfiResult<Arc<Self>> {
        let key = Key::raw(&bytes);
        wipe(bytes);
        Ok(Arc::new(FfiKey { key: key? }))
    }
}

/// The copy uniffi made of the key's bytes, zeroed before it is freed (the core wipes its
/// own copies).
fn wipe(mut bytes: Vec<u8>) {
    for b in bytes.iter_mut() {
        // Volatile: a store to memory about to be freed may otherwise be dropped.
        unsafe { std::ptr::write_volatile(b, 0) };
    }
}

/// A key provider's answer: the keys to try, newest first, or the text of the exception
/// it threw.
#[derive(uniffi::Enum)]
pub enum KeysAnswer {
    Keys { keys: Vec<Arc<FfiKey>> },
    Failed { reason: String },
}

/// The keys of an encrypted file, asked for when the queue opens and again whenever its
/// key stops opening the file (another queue's `rekey`), from any thread.
#[uniffi::export(with_foreign)]
pub trait FfiKeyProvider: Send + Sync {
    fn keys(&self) -> KeysAnswer;
}

/// The provider as the core's: a failure becomes the core's `Encryption` error naming it.
pub fn provider(
    p: Arc<dyn FfiKeyProvider>,
) -> impl Fn() -> Result<Vec<Key>, String> + Send + Sync + 'static {
    move || match p.keys() {
        KeysAnswer::Keys { keys } => Ok(keys.iter().map(|k| k.key.clone()).collect()),
        KeysAnswer::Failed { reason } => Err(reason),
    }
}
