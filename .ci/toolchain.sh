# Sourced by .ci/setup, .ci/test and tests/lab/demo.sh: finds the Rust
# toolchain for a root shell and under sudo. sudo's secure_path leaves out
# ~/.cargo/bin, so look there: root's own, then the invoking user's (with
# their rustup toolchains; cargo's own downloads still go to root's
# CARGO_HOME).
if ! command -v cargo >/dev/null 2>&1; then
    for _home in "${HOME:-/root}" /root ${SUDO_USER:+"$(getent passwd "$SUDO_USER" | cut -d: -f6)"}; do
        if [ -x "$_home/.cargo/bin/cargo" ]; then
            export PATH="$_home/.cargo/bin:$PATH"
            if [ -z "${RUSTUP_HOME:-}" ] && [ -d "$_home/.rustup" ] && [ ! -d "${HOME:-/root}/.rustup" ]; then
                export RUSTUP_HOME="$_home/.rustup"
            fi
            break
        fi
    done
    unset _home
fi
# cargo install puts cargo-fuzz in root's CARGO_HOME.
case ":$PATH:" in
    *":${CARGO_HOME:-${HOME:-/root}/.cargo}/bin:"*) ;;
    *) export PATH="$PATH:${CARGO_HOME:-${HOME:-/root}/.cargo}/bin" ;;
esac
