//! preflight: network reachability preflight checks for API-gateway data plane nodes.
//!
//! Data flows one way: `cli` → `settings` (a `runner::RunConfig` and a `Plan`) → `plan`
//! (profiles, targets and a kong.conf → `check::CheckSpec`s, settled: route, TLS request,
//! payload, expectation) → `rounds` (the loop of watch and serve) → `runner` (schedules) →
//! `runner::path` (which path, which addresses, which failure speaks) → `runner::opinion` (an
//! attempt and its second opinion) → `runner::attempt` (connect → [tls] → [http]) → `report` →
//! `render`. `failure` is the failure contract; `route` chooses the proxy; `listen` is the
//! responder that other hosts' checks reach. ARCHITECTURE.md is the map.
#![forbid(unsafe_code)]
#![deny(clippy::print_stdout, clippy::print_stderr)]

pub mod allowlist;
pub(crate) mod check;
pub mod cli;
pub mod discover;
pub mod error;
pub mod explain;
pub mod failure;
pub(crate) mod files;
pub mod ip_list;
pub mod kongconf;
pub mod listen;
pub mod merge;
pub mod output;
pub mod plan;
pub mod probe;
pub mod profile;
pub mod progress;
pub mod render;
pub mod report;
pub mod rounds;
pub mod route;
pub mod runner;
pub mod sanitize;
pub mod serve;
pub mod settings;
pub mod target;
pub mod watch;
