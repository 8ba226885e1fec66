//! Shared test helpers: the proto-fixtures manifest, network-namespace
//! labs and the peers' configurations.
#![allow(dead_code)]

pub mod netns;
pub mod peers;
pub mod raw;

use std::path::{Path, PathBuf};

use bgpd::wire::{AfiSafi, AfiSafiSet, Ctx};
use serde::Deserialize;

#[derive(Debug, Clone, Deserialize)]
pub struct Fixture {
    pub file: String,
    pub sender: String,
    #[serde(default)]
    pub version: String,
    #[serde(default)]
    pub receiver: String,
    #[serde(default)]
    pub lab: String,
    #[serde(default)]
    pub config: String,
    pub kind: String,
    #[serde(default)]
    pub description: String,
    #[serde(default)]
    pub four_octet_as: bool,
    #[serde(default)]
    pub add_path: Vec<String>,
    #[serde(default)]
    pub extended_message: bool,
    /// A real message that bgpd must refuse: the NOTIFICATION it sends,
    /// as "code/subcode" (a peer provoked into sending hold time 2, say).
    #[serde(default)]
    pub expect_error: Option<String>,
}

#[derive(Debug, Deserialize)]
struct Manifest {
    fixture: Vec<Fixture>,
}

pub fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("proto-fixtures")
}

pub fn fixtures() -> Vec<Fixture> {
    let path = root().join("manifest.toml");
    let text = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()));
    let m: Manifest = toml::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    assert!(!m.fixture.is_empty(), "the manifest lists no fixtures");
    m.fixture
}

impl Fixture {
    pub fn path(&self) -> PathBuf {
        root().join(&self.file)
    }

    pub fn bytes(&self) -> Vec<u8> {
        std::fs::read(self.path()).unwrap_or_else(|e| panic!("{}: {e}", self.file))
    }

    /// The decoding context the receiver negotiated. The same context
    /// re-encodes the message, so ADD-PATH applies in both directions.
    pub fn ctx(&self) -> Ctx {
        let ap: AfiSafiSet = self
            .add_path
            .iter()
            .map(|s| {
                s.parse::<AfiSafi>()
                    .unwrap_or_else(|e| panic!("{}: {e}", self.file))
            })
            .collect();
        Ctx {
            four_octet_as: self.four_octet_as,
            extended_message: self.extended_message,
            add_path_rx: ap,
            add_path_tx: ap,
        }
    }
}
