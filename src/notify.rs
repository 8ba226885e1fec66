//! systemd integration without libsystemd: sd_notify(3) messages over
//! $NOTIFY_SOCKET, the watchdog interval from $WATCHDOG_USEC, and whether
//! stderr goes to the journal ($JOURNAL_STREAM).

use std::os::unix::net::UnixDatagram;
use std::time::Duration;

/// Sends a notification (e.g. "READY=1", "STATUS=...", "WATCHDOG=1",
/// "RELOADING=1", "STOPPING=1"). Without $NOTIFY_SOCKET it does nothing.
pub fn notify(state: &str) {
    let Some(path) = std::env::var_os("NOTIFY_SOCKET") else {
        return;
    };
    let Ok(sock) = UnixDatagram::unbound() else {
        return;
    };
    let bytes = path.as_encoded_bytes();
    let result = if let Some(abstract_name) = bytes.strip_prefix(b"@") {
        // An abstract socket: a leading NUL instead of '@'.
        use std::os::linux::net::SocketAddrExt;
        std::os::unix::net::SocketAddr::from_abstract_name(abstract_name)
            .and_then(|a| sock.send_to_addr(state.as_bytes(), &a))
    } else {
        sock.send_to(state.as_bytes(), &path)
    };
    if let Err(e) = result {
        tracing::debug!("sd_notify {state}: {e}");
    }
}

/// "RELOADING=1" with the CLOCK_MONOTONIC time in microseconds, as
/// sd_notify(3) asks (systemd matches the reload with it).
pub fn reloading() {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: clock_gettime writes into the timespec we pass.
    unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut ts) };
    let usec = ts.tv_sec as u64 * 1_000_000 + ts.tv_nsec as u64 / 1_000;
    notify(&format!("RELOADING=1\nMONOTONIC_USEC={usec}"));
}

/// Half the watchdog timeout systemd expects pings within, if it set one
/// for us.
pub fn watchdog_interval() -> Option<Duration> {
    let usec: u64 = std::env::var("WATCHDOG_USEC").ok()?.parse().ok()?;
    if let Ok(pid) = std::env::var("WATCHDOG_PID")
        && pid.parse::<u32>().ok() != Some(std::process::id())
    {
        return None;
    }
    Some(Duration::from_micros(usec / 2))
}

/// Whether stderr is connected to the journal, which adds its own
/// timestamps.
pub fn logging_to_journal() -> bool {
    let Ok(v) = std::env::var("JOURNAL_STREAM") else {
        return false;
    };
    let Some((dev, ino)) = v.split_once(':') else {
        return false;
    };
    use std::os::unix::fs::MetadataExt;
    let Ok(meta) = std::fs::metadata("/proc/self/fd/2") else {
        return false;
    };
    meta.dev().to_string() == dev && meta.ino().to_string() == ino
}
