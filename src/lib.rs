//! bgpd: a BGP speaker that lets a Linux box take over a LAN core switch's
//! job of learning Calico's pod and service routes.
//!
//! Layers (see docs/architecture.md):
//! - [`wire`]: the sans-IO message codec.
//! - [`fsm`]: the sans-IO RFC 4271 state machine.
//! - [`session`]: tokio peer tasks, listeners and sockets.
//! - [`rib`]: the sans-IO routing table.
//! - [`route`]: what the RIB hands the FIB.
//! - [`fib`]: kernel routes through rtnetlink, next-hop resolution.
//! - [`config`]: the TOML configuration and its validation.
//! - [`daemon`]: the main loop; [`control`]: the control socket.
//! - [`hash`]: the keyed fast hasher of the hot tables.
//! - [`cpu`]: what the binary expects of the CPU (POPCNT on x86-64).

pub mod cli;
pub mod config;
pub mod control;
pub mod controller;
pub mod cpu;
pub mod daemon;
pub mod fib;
pub mod fsm;
pub mod hash;
pub mod metrics;
pub mod notify;
pub mod rib;
pub mod route;
pub mod session;
pub mod units;
pub mod wire;
