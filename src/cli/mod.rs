//! Command-line tools built on the library.

pub mod decode;
pub mod show;
pub mod view;
