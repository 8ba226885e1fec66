//! The man page (clap_mangen) and the shell completions (clap_complete)
//! come from the clap definitions, so they list exactly the flags and
//! subcommands bgpd takes. The package ships both.

use std::process::{Command, Output};

fn bgpd(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_bgpd"))
        .args(args)
        .output()
        .unwrap()
}

fn text(o: &Output) -> String {
    assert!(o.status.success(), "{o:?}");
    String::from_utf8(o.stdout.clone()).unwrap()
}

#[test]
fn man_page_is_roff_from_the_clap_definitions() {
    let page = text(&bgpd(&["man"]));
    assert!(page.contains(".TH bgpd 8"), "{page}");
    // The name line, the flags and the subcommands.
    for want in [
        "bgpd \\- ",
        "\\-\\-config",
        "\\-\\-peer",
        "\\-\\-asn",
        "\\-\\-control\\-socket",
        "bgpd\\-check(8)",
        "bgpd\\-show(8)",
        "bgpd\\-health(8)",
        "bgpd\\-track(8)",
        "bgpd\\-stop(8)",
        "bgpd\\-completions(8)",
    ] {
        assert!(page.contains(want), "the man page lacks {want}:\n{page}");
    }
    // The man subcommand is hidden, from --help and from the page.
    assert!(!page.contains("bgpd\\-man(8)"), "{page}");
    assert!(!text(&bgpd(&["--help"])).contains("\n  man "));
}

#[test]
fn man_dir_writes_one_page_per_subcommand_and_man_renders_them() {
    let dir = std::env::temp_dir().join(format!("bgpd-man-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let o = bgpd(&["man", "--dir", dir.to_str().unwrap()]);
    assert!(o.status.success(), "{o:?}");
    let mut pages: Vec<String> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    pages.sort();
    for want in [
        "bgpd.8",
        "bgpd-check.8",
        "bgpd-show.8",
        "bgpd-show-neighbors.8",
        "bgpd-health.8",
        "bgpd-track.8",
        "bgpd-stop.8",
        "bgpd-decode.8",
    ] {
        assert!(pages.iter().any(|p| p == want), "no {want} in {pages:?}");
    }
    assert!(!pages.iter().any(|p| p == "bgpd-man.8"), "{pages:?}");
    assert!(!pages.iter().any(|p| p == "bgpd-help.8"), "{pages:?}");
    let check = std::fs::read_to_string(dir.join("bgpd-check.8")).unwrap();
    assert!(check.contains("\\-\\-config"), "{check}");
    // groff renders the page without a warning (man(8) as the package's
    // users read it). man-db is on Debian; skip where it is not.
    let have_man = Command::new("sh")
        .args(["-c", "command -v man"])
        .output()
        .is_ok_and(|o| o.status.success());
    if have_man {
        let r = Command::new("man")
            .args(["--warnings", "-E", "UTF-8", "-l"])
            .arg(dir.join("bgpd.8"))
            .env("MANWIDTH", "80")
            .env("MAN_KEEP_FORMATTING", "0")
            .output()
            .unwrap();
        let out = String::from_utf8_lossy(&r.stdout);
        let err = String::from_utf8_lossy(&r.stderr);
        assert!(r.status.success(), "man -l: {err}");
        // A long flag line that cannot be justified at 80 columns is
        // typesetting, not a mistake in the page; anything else is.
        let real: Vec<&str> = err
            .lines()
            .filter(|l| !l.contains("cannot adjust line") && !l.trim().is_empty())
            .collect();
        assert!(real.is_empty(), "man --warnings: {err}");
        assert!(out.contains("--peer"), "{out}");
    }
    let _ = std::fs::remove_dir_all(&dir);
    // A directory that cannot be made is one line and exit 1.
    let o = bgpd(&["man", "--dir", "/proc/version/x"]);
    assert_eq!(o.status.code(), Some(1));
    assert!(
        String::from_utf8_lossy(&o.stderr).starts_with("bgpd man: cannot write to /proc/version/x")
    );
}

#[test]
fn completions_exist_for_each_shell_and_parse() {
    for shell in ["bash", "zsh", "fish"] {
        let script = text(&bgpd(&["completions", shell]));
        for sub in [
            "check", "show", "health", "track", "stop", "reload", "decode",
        ] {
            assert!(script.contains(sub), "{shell} completion lacks {sub}");
        }
        let peer = if shell == "fish" { "-l peer" } else { "--peer" };
        assert!(script.contains(peer), "{shell} completion lacks --peer");
    }
    // The bash script is valid bash.
    let script = text(&bgpd(&["completions", "bash"]));
    let path = std::env::temp_dir().join(format!("bgpd-compl-{}.bash", std::process::id()));
    std::fs::write(&path, &script).unwrap();
    let st = Command::new("bash").arg("-n").arg(&path).status().unwrap();
    let _ = std::fs::remove_file(&path);
    assert!(st.success());
}
