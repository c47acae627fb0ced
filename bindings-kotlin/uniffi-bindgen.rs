//! The `uniffi-bindgen` command, pinned to this crate's uniffi version so that the
//! generated Kotlin always matches the scaffolding in the cdylib.

fn main() {
    uniffi::uniffi_bindgen_main()
}
