//! Fuzz target: program bytes, through what the runtime does before mapping them.
//!
//! `elf::inspect`, then the static-PIE relocation, then the validator's sweep of the
//! executable segments: any bytes must give a verdict, never a panic or an
//! out-of-bounds access.

#![no_main]

use libfuzzer_sys::fuzz_target;
use zerolab_sandbox::{elf, validator};

fuzz_target!(|data: &[u8]| {
    let Ok(image) = elf::inspect(data) else { return };
    let bytes = elf::relocate_static_pie(data, &image).expect("inspect accepted it, so relocation applies");
    let _ = validator::validate_image(&bytes, &image);
});
