//! What the tests share: the loopback world (certificates, servers, a DNS server, the binary),
//! the forward proxies, a whole Konnect world, and raw TCP servers.

pub mod konnect;
pub mod lab;
pub mod proxies;
pub mod raw;
pub mod servers;
pub mod words;
pub mod world;
