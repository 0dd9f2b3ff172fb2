//! preflight: network reachability preflight checks for API-gateway data plane nodes.
//!
//! Data flows one way: `cli` → `settings` → `plan` (profiles + targets → checks) → `runner`
//! (probes: dns → [proxy] → tcp → tls → http, or udp, or a local bind) → `report` → `render`;
//! `proxy` chooses the proxy. `listen` is the responder that other hosts' checks reach.
#![forbid(unsafe_code)]
#![warn(unreachable_pub)]
#![deny(clippy::print_stdout, clippy::print_stderr)]

pub mod allowlist;
pub mod check;
pub mod cli;
pub mod error;
pub mod failure;
pub(crate) mod files;
pub mod kongconf;
pub mod listen;
pub mod output;
pub mod plan;
pub mod probe;
pub mod profile;
pub mod progress;
pub mod render;
pub mod report;
pub mod route;
pub mod runner;
pub mod sanitize;
pub mod settings;
pub mod target;
pub mod watch;
