//! Integration tests: the real binary against servers on loopback and firewalls in private
//! network namespaces. No traffic leaves the machine.

mod allowlist;
mod checks;
mod cluster_upgrade;
mod deploy;
mod explain;
mod firewall;
mod formats;
mod hardening;
mod hints;
mod hostile;
mod image;
mod input_files;
mod inputs;
mod kong_fidelity;
mod kongconf;
mod layout;
mod local;
mod manual;
mod merge;
mod messy_network;
mod mistakes;
mod node_files;
mod outside_text;
mod profiles;
mod proxy;
mod scale;
mod second;
mod secrets;
mod serve;
mod serve_hostile;
mod shape;
mod support;
mod terminal;
mod tls;
mod verdicts;
