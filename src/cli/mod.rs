//! Command-line tools built on the library.

pub mod decode;
pub mod peer;
pub mod show;
