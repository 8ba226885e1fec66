//! What the binary expects of the CPU it runs on.
//!
//! x86-64 builds use the POPCNT instruction (`.cargo/config.toml`): the
//! prefix tries count bits on every step of a lookup, and the instruction
//! makes RIB-only convergence about a third faster (docs/performance.md).
//! A CPU without it (older than 2008) would die of SIGILL at the first
//! trie lookup; [`check`] says so in one line at start instead.

/// Whether this CPU runs what the binary was built for; the error is the
/// line to print.
pub fn check() -> Result<(), String> {
    #[cfg(all(target_arch = "x86_64", target_feature = "popcnt"))]
    {
        verdict(std::arch::is_x86_feature_detected!("popcnt"))
    }
    #[cfg(not(all(target_arch = "x86_64", target_feature = "popcnt")))]
    {
        Ok(())
    }
}

/// The answer for a build that uses POPCNT, given whether the CPU has it.
pub fn verdict(has_popcnt: bool) -> Result<(), String> {
    if has_popcnt {
        Ok(())
    } else {
        Err(
            "error: this CPU lacks the POPCNT instruction (x86-64-v2) that this bgpd \
             binary was built for; rebuild it for this CPU with \
             RUSTFLAGS=\"-C target-cpu=native\" cargo build --release"
                .to_string(),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn this_machine_runs_the_build_and_a_cpu_without_popcnt_is_told_how_to_fix_it() {
        assert_eq!(check(), Ok(()));
        let e = verdict(false).unwrap_err();
        assert!(e.starts_with("error: this CPU lacks the POPCNT instruction"));
        assert!(e.contains("RUSTFLAGS=\"-C target-cpu=native\" cargo build --release"));
        assert!(!e.contains('\n'), "one line: {e}");
        assert_eq!(verdict(true), Ok(()));
    }

    /// The build this test runs in is the one `.cargo/config.toml` asks
    /// for (an x86-64 build without POPCNT would lose the speed silently).
    #[test]
    #[cfg(target_arch = "x86_64")]
    fn x86_64_builds_use_popcnt() {
        let built_with_popcnt = cfg!(target_feature = "popcnt");
        if std::env::var_os("RUSTFLAGS").is_none() {
            assert!(
                built_with_popcnt,
                "built without .cargo/config.toml's POPCNT"
            );
        }
    }
}
