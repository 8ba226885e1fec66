//! Shared test helpers: the proto-fixtures manifest, network-namespace
//! labs and the peers' configurations.
#![allow(dead_code)]

pub mod mrt;
pub mod netns;
pub mod peers;
pub mod raw;

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use bgpd::wire::{AfiSafi, AfiSafiSet, Ctx};
use serde::Deserialize;

/// Whether the run is CI's: `.ci/run` sets CI=true itself, so a run by
/// hand (`sudo bash .ci/run`, which drops the caller's environment) is too.
pub fn in_ci() -> bool {
    std::env::var("CI").as_deref() == Ok("true")
}

/// Where skips are recorded, one line each, for `.ci/test` to count:
/// `$BGPD_SKIP_LOG`, or `skips.log` in cargo's scratch folder for tests.
pub fn skip_log() -> PathBuf {
    std::env::var_os("BGPD_SKIP_LOG")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_TARGET_TMPDIR")).join("skips.log"))
}

/// The one way a test skips. Under CI a missing prerequisite fails the
/// test (it panics); otherwise it says so on stderr and records the skip
/// in [`skip_log`], so a run ends with a count of what did not run.
#[track_caller]
pub fn skip(what: &str) {
    let at = std::panic::Location::caller();
    assert!(
        !in_ci(),
        "CI=true and {what}: the test cannot run ({}:{})",
        at.file(),
        at.line()
    );
    let test = std::thread::current().name().unwrap_or("?").to_string();
    eprintln!("SKIPPED {test}: {what}");
    if let Ok(mut f) = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(skip_log())
    {
        let _ = writeln!(f, "{}:{} {test}: {what}", at.file(), at.line());
    }
}

/// Whether a prerequisite holds; when it does not, [`skip`]s (which fails
/// under CI). Use as `if !require(ok, "why") { return; }`.
#[track_caller]
pub fn require(ok: bool, what: &str) -> bool {
    if !ok {
        skip(what);
    }
    ok
}

/// Whether a program is on the PATH.
pub fn have(program: &str) -> bool {
    Command::new("sh")
        .args(["-c", &format!("command -v {program}")])
        .stdout(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

/// [`require`] for programs: each missing one is a skip (a failure in CI).
#[track_caller]
pub fn require_programs(programs: &[&str]) -> bool {
    programs
        .iter()
        .all(|p| require(have(p), &format!("{p} is not installed (run .ci/setup)")))
}

pub fn is_root() -> bool {
    // SAFETY: geteuid has no preconditions.
    unsafe { libc::geteuid() == 0 }
}

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

/// Runs a lab script of tests/lab/ with the test's bgpd binary, a LAB_ID
/// made of `id` and the process id, and `env`; prints its output and
/// fails the test unless it exits 0 and prints `pass`. Returns stdout.
pub fn run_lab_script(script: &str, id: &str, env: &[(&str, String)], pass: &str) -> String {
    let out = Command::new("bash")
        .arg(
            Path::new(env!("CARGO_MANIFEST_DIR"))
                .join("tests/lab")
                .join(script),
        )
        .env("BGPD", env!("CARGO_BIN_EXE_bgpd"))
        .env("LAB_ID", format!("{id}{}", std::process::id() % 100000))
        .envs(env.iter().map(|(k, v)| (*k, v.as_str())))
        .output()
        .expect("bash");
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&out.stderr);
    println!("{stdout}");
    assert!(
        out.status.success() && stdout.contains(pass),
        "{script} failed:\n{stdout}\n{stderr}"
    );
    stdout
}
