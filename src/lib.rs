//! bgpd: a BGP speaker that lets a Linux box take over a LAN core switch's
//! job of learning Calico's pod and service routes.
//!
//! Layers (see docs/architecture.md):
//! - [`wire`]: the sans-IO message codec.

pub mod cli;
pub mod fsm;
pub mod route;
pub mod session;
pub mod wire;
