//! Profiles: TOML descriptions of the endpoints a product's data plane needs, built in or
//! loaded by path; their variables and host templates.

mod template;
mod variables;

use std::collections::HashSet;
use std::fmt;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::error::InputError;
use crate::target::Probe;
pub use template::Template;
pub use variables::{Assignments, bind};

/// The profiles compiled into the binary: (name, file text).
const BUILTIN: &[(&str, &str)] = &[
    ("konnect", include_str!("../../profiles/konnect.toml")),
    (
        "konnect-kic",
        include_str!("../../profiles/konnect-kic.toml"),
    ),
    (
        "konnect-mesh",
        include_str!("../../profiles/konnect-mesh.toml"),
    ),
    (
        "kong-hybrid",
        include_str!("../../profiles/kong-hybrid.toml"),
    ),
    ("kgateway", include_str!("../../profiles/kgateway.toml")),
    (
        "apigee-hybrid",
        include_str!("../../profiles/apigee-hybrid.toml"),
    ),
    (
        "kong-dataplane",
        include_str!("../../profiles/kong-dataplane.toml"),
    ),
];

/// What an endpoint is for; `--only` selects by it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Role {
    /// The vendor's platform (an API, a registry).
    Platform,
    /// An API the node calls.
    Api,
    /// The control plane the node connects to.
    ControlPlane,
    /// Where the node sends telemetry.
    Telemetry,
    /// A developer portal.
    Portal,
    /// The service mesh's own endpoints.
    Mesh,
    /// Endpoints inside the site.
    Internal,
    /// Endpoints outside the site.
    External,
    /// A port this host will listen on (a bind check).
    Local,
    /// A target given on the command line.
    Target,
}

impl Role {
    /// Every role, in the order reports show them.
    pub const ALL: [Role; 10] = [
        Role::Platform,
        Role::Api,
        Role::ControlPlane,
        Role::Telemetry,
        Role::Portal,
        Role::Mesh,
        Role::Internal,
        Role::External,
        Role::Local,
        Role::Target,
    ];

    /// The word profiles and reports use for the role.
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Platform => "platform",
            Role::Api => "api",
            Role::ControlPlane => "control-plane",
            Role::Telemetry => "telemetry",
            Role::Portal => "portal",
            Role::Mesh => "mesh",
            Role::Internal => "internal",
            Role::External => "external",
            Role::Local => "local",
            Role::Target => "target",
        }
    }

    /// The role a word names.
    pub fn parse(text: &str) -> Option<Role> {
        Role::ALL.into_iter().find(|r| r.as_str() == text)
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A variable a profile's host templates use.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Variable {
    /// The variable's name, as `{name}` in templates and `--set name=VALUE`.
    pub name: String,
    /// What to give for it.
    pub help: String,
    /// Whether a value must be given for its endpoints to run.
    #[serde(default)]
    pub required: bool,
    /// The value when none is given.
    pub default: Option<String>,
    /// The only values allowed, when the profile lists them.
    #[serde(default)]
    pub allowed: Vec<String>,
    /// A regular expression the whole value must match.
    pub pattern: Option<String>,
}

/// One endpoint of a profile, as written in the file.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Endpoint {
    /// The endpoint's key in its profile: the id is `PROFILE.KEY`.
    pub key: String,
    /// A person's name for it.
    pub name: String,
    /// What it is for.
    pub role: Role,
    /// The host, with `{variables}`.
    pub host: Template,
    /// The port; `None` for a DNS check.
    pub port: Option<u16>,
    /// What the check does.
    pub probe: Probe,
    /// Whether a failure fails the run.
    #[serde(default = "yes")]
    pub required: bool,
    /// Where the vendor documents this endpoint, and anything to know about it (optional).
    #[serde(default)]
    pub note: String,
    /// The request path of http, https, ws and wss probes (default `/`).
    pub path: Option<String>,
    /// The TLS server name (SNI, and the name verified) when it is not the host, as Kong's
    /// `cluster_server_name`.
    pub server_name: Option<Template>,
    /// ALPN protocols to offer.
    #[serde(default)]
    pub alpn: Vec<String>,
    /// The endpoint requires a client certificate (mutual TLS).
    #[serde(default)]
    pub client_cert: bool,
    /// The endpoint presents a publicly trusted certificate: any other is interception.
    #[serde(default)]
    pub public_ca: bool,
    /// The datagram a udp probe sends.
    pub payload: Option<String>,
}

fn yes() -> bool {
    true
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ProfileFile {
    name: String,
    description: String,
    #[serde(default)]
    source: Vec<String>,
    #[serde(default)]
    variables: Vec<toml::Spanned<Variable>>,
    endpoints: Vec<toml::Spanned<Endpoint>>,
}

/// A loaded, validated profile.
#[derive(Debug, Clone)]
pub struct Profile {
    /// The profile's name (`konnect`), or its file's.
    pub name: String,
    /// What it checks, in a line.
    pub description: String,
    /// The vendor pages this profile follows.
    pub source: Vec<String>,
    /// The variables its templates use.
    pub variables: Vec<Variable>,
    /// Its endpoints.
    pub endpoints: Vec<Endpoint>,
    /// Where it came from: `builtin:NAME` or the file's path.
    pub origin: PathBuf,
}

impl Profile {
    /// The variable named `name`, if the profile has one.
    pub fn variable(&self, name: &str) -> Option<&Variable> {
        self.variables.iter().find(|v| v.name == name)
    }
}

/// The names of the built-in profiles.
pub fn builtin_names() -> impl Iterator<Item = &'static str> {
    BUILTIN.iter().map(|(name, _)| *name)
}

/// Loads every built-in profile.
pub fn builtins() -> Result<Vec<Profile>, InputError> {
    BUILTIN
        .iter()
        .map(|(name, text)| parse(text, Path::new(&format!("builtin:{name}"))))
        .collect()
}

/// Loads a profile by built-in name, or from a file when `spec` ends in `.toml` or has a `/`.
pub fn load(spec: &str) -> Result<Profile, InputError> {
    if spec.ends_with(".toml") || spec.contains('/') {
        let path = Path::new(spec);
        return parse(&crate::files::read_text(path, "the profile")?, path);
    }
    match BUILTIN.iter().find(|(name, _)| *name == spec) {
        Some((name, text)) => parse(text, Path::new(&format!("builtin:{name}"))),
        None => Err(InputError::UnknownProfile {
            name: spec.to_string(),
            known: builtin_names().collect::<Vec<_>>().join(", "),
        }),
    }
}

/// The largest profile: a product's endpoints take a few KiB. Parsing TOML costs many times
/// its size in memory, so the cap is what bounds it, with the counts below.
pub const MAX_PROFILE_BYTES: usize = 1024 * 1024;
/// The most endpoints and variables a profile may declare.
pub const MAX_ENDPOINTS: usize = 2_000;
/// The most variables a profile may declare.
pub const MAX_VARIABLES: usize = 100;

/// Parses and validates a profile's text; errors name `path` and the line.
pub fn parse(text: &str, path: &Path) -> Result<Profile, InputError> {
    let at = |offset: usize, reason: String| InputError::FileLine {
        path: path.to_path_buf(),
        line: line_of(text, offset),
        reason,
    };
    if text.len() > MAX_PROFILE_BYTES {
        return Err(InputError::File {
            path: path.to_path_buf(),
            reason: too_large(),
        });
    }
    let file: ProfileFile = toml::from_str(text).map_err(|e| {
        let offset = e.span().map_or(0, |s| s.start);
        at(offset, e.message().trim().to_string())
    })?;
    if file.endpoints.len() > MAX_ENDPOINTS || file.variables.len() > MAX_VARIABLES {
        return Err(at(
            0,
            format!(
                "the profile declares {} endpoints and {} variables; at most {MAX_ENDPOINTS} and {MAX_VARIABLES}",
                file.endpoints.len(),
                file.variables.len()
            ),
        ));
    }
    if file.name.is_empty() {
        return Err(at(0, "the profile's `name` is empty".into()));
    }
    let mut variables = Vec::new();
    let mut names = HashSet::new();
    for spanned in file.variables {
        let offset = spanned.span().start;
        let var = spanned.into_inner();
        if !names.insert(var.name.clone()) {
            return Err(at(
                offset,
                format!("variable `{}` is declared twice", var.name),
            ));
        }
        variables::check_declaration(&var).map_err(|reason| at(offset, reason))?;
        variables.push(var);
    }
    if file.endpoints.is_empty() {
        return Err(at(0, "the profile has no [[endpoints]]".into()));
    }
    let mut endpoints = Vec::new();
    let mut keys = HashSet::new();
    for spanned in file.endpoints {
        let offset = spanned.span().start;
        let ep = spanned.into_inner();
        let fail = |reason: String| at(offset, format!("endpoint `{}`: {reason}", ep.key));
        if !keys.insert(ep.key.clone()) {
            return Err(fail("the key is used twice".into()));
        }
        check_endpoint(&ep, &names).map_err(fail)?;
        endpoints.push(ep);
    }
    Ok(Profile {
        name: file.name,
        description: file.description,
        source: file.source,
        variables,
        endpoints,
        origin: path.to_path_buf(),
    })
}

fn too_large() -> String {
    format!(
        "the profile is larger than {} MiB: a profile lists a product's endpoints, at most {MAX_ENDPOINTS}",
        MAX_PROFILE_BYTES >> 20
    )
}

/// What makes an endpoint unusable: a variable not declared (`names` are), a port missing or
/// out of range, a field its probe does not use.
fn check_endpoint(ep: &Endpoint, names: &HashSet<String>) -> Result<(), String> {
    let templates = std::iter::once(&ep.host).chain(ep.server_name.as_ref());
    if let Some(unknown) = templates
        .flat_map(|t| t.variables())
        .find(|v| !names.contains(*v))
    {
        return Err(format!(
            "{{{unknown}}} is used but is not a declared variable"
        ));
    }
    match (ep.probe, ep.port) {
        (Probe::Dns, _) => {}
        (_, Some(0)) => return Err("port 0 is out of range (1 to 65535)".into()),
        (probe, None) if probe.default_port().is_none() => {
            return Err(format!("a {probe} probe needs a `port`"));
        }
        _ => {}
    }
    if ep.path.is_some() && !ep.probe.uses_http() {
        return Err("`path` applies to http, https, ws and wss probes only".into());
    }
    if let Some(path) = ep.path.as_deref().filter(|p| !p.starts_with('/')) {
        return Err(format!("`path` must start with /, not `{path}`"));
    }
    if ep.payload.is_some() && ep.probe != Probe::Udp {
        return Err("`payload` applies to udp probes only".into());
    }
    let tls_only =
        ep.server_name.is_some() || !ep.alpn.is_empty() || ep.client_cert || ep.public_ca;
    if tls_only && !ep.probe.uses_tls() {
        return Err(
            "server_name, alpn, client_cert and public_ca apply to tls, https and wss probes only"
                .into(),
        );
    }
    Ok(())
}

/// The 1-based line of a byte offset.
fn line_of(text: &str, offset: usize) -> usize {
    text.get(..offset).unwrap_or(text).matches('\n').count() + 1
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_builtin_profile_loads() {
        let profiles = builtins().expect("built-in profiles load");
        let names: Vec<_> = profiles.iter().map(|p| p.name.as_str()).collect();
        assert_eq!(names, builtin_names().collect::<Vec<_>>());
        for p in &profiles {
            assert!(!p.endpoints.is_empty(), "{}", p.name);
            assert!(!p.source.is_empty(), "{} cites no source", p.name);
            for ep in &p.endpoints {
                assert!(!ep.note.is_empty(), "{}.{} has no note", p.name, ep.key);
            }
        }
    }

    #[test]
    fn konnect_has_the_documented_variables() {
        let konnect = load("konnect").unwrap();
        let names: Vec<_> = konnect.variables.iter().map(|v| v.name.as_str()).collect();
        assert_eq!(names, ["region", "cp_prefix", "portal_id"]);
        assert_eq!(
            konnect.variable("region").unwrap().allowed,
            ["au", "eu", "me", "in", "sg", "us"]
        );
    }

    #[test]
    fn unknown_profile_lists_the_builtins() {
        let err = load("nope").unwrap_err().to_string();
        assert!(err.contains("unknown profile `nope`"), "{err}");
        assert!(err.contains("konnect, konnect-kic"), "{err}");
    }

    fn parse_err(text: &str) -> String {
        parse(text, Path::new("p.toml")).unwrap_err().to_string()
    }

    const HEAD: &str = "name = \"t\"\ndescription = \"d\"\n";

    #[test]
    fn malformed_toml_names_file_and_line() {
        let err = parse_err(&format!("{HEAD}[[endpoints]]\nkey = \n"));
        assert!(err.starts_with("p.toml, line 4:"), "{err}");
    }

    #[test]
    fn unknown_field_names_its_line() {
        let text = format!(
            "{HEAD}[[endpoints]]\nkey = \"a\"\nname = \"A\"\nrole = \"api\"\nhost = \"x\"\nport = 1\nprobe = \"tcp\"\nnote = \"n\"\nprot = 3\n"
        );
        let err = parse_err(&text);
        assert!(err.contains("line 11") && err.contains("prot"), "{err}");
    }

    #[test]
    fn semantic_errors_name_the_endpoint_and_line() {
        let ep = "[[endpoints]]\nkey = \"a\"\nname = \"A\"\nrole = \"api\"\nnote = \"n\"\n";
        let err = parse_err(&format!(
            "{HEAD}{ep}host = \"{{nope}}.x\"\nport = 1\nprobe = \"tcp\"\n"
        ));
        assert!(err.contains("line 3") && err.contains("{nope}"), "{err}");
        let err = parse_err(&format!("{HEAD}{ep}host = \"x\"\nprobe = \"tls\"\n"));
        assert!(err.contains("needs a `port`"), "{err}");
        let err = parse_err(&format!(
            "{HEAD}{ep}host = \"x\"\nport = 70000\nprobe = \"tls\"\n"
        ));
        assert!(err.contains("line 9"), "{err}");
        let err = parse_err(&format!(
            "{HEAD}{ep}host = \"x\"\nport = 1\nprobe = \"ftp\"\n"
        ));
        assert!(err.contains("ftp"), "{err}");
        let web = ep.replace("\"api\"", "\"web\"");
        let err = parse_err(&format!(
            "{HEAD}{web}host = \"x\"\nport = 1\nprobe = \"tcp\"\n"
        ));
        assert!(err.contains("line 6") && err.contains("web"), "{err}");
    }

    #[test]
    fn http_and_websocket_endpoints_default_their_port() {
        let text = format!(
            "{HEAD}[[endpoints]]\nkey = \"ws\"\nname = \"W\"\nrole = \"control-plane\"\nhost = \"cp.example\"\nprobe = \"websocket\"\npath = \"/v1/outlet\"\nclient_cert = true\nnote = \"n\"\n"
        );
        let p = parse(&text, Path::new("p.toml")).unwrap();
        assert_eq!(p.endpoints[0].probe, Probe::Wss);
        assert_eq!(p.endpoints[0].probe.default_port(), Some(443));
        assert_eq!(p.endpoints[0].path.as_deref(), Some("/v1/outlet"));
    }

    #[test]
    fn bad_variable_declarations_are_refused() {
        let ep = "[[endpoints]]\nkey = \"a\"\nname = \"A\"\nrole = \"api\"\nnote = \"n\"\nhost = \"{v}\"\nport = 1\nprobe = \"tcp\"\n";
        let var = "[[variables]]\nname = \"v\"\nhelp = \"h\"\n";
        let err = parse_err(&format!("{HEAD}{var}pattern = \"([a-z\"\n{ep}"));
        assert!(err.contains("line 3") && err.contains("pattern"), "{err}");
        let err = parse_err(&format!(
            "{HEAD}{var}allowed = [\"a\"]\ndefault = \"b\"\n{ep}"
        ));
        assert!(err.contains("default `b`"), "{err}");
        let err = parse_err(&format!("{HEAD}{var}{var}{ep}"));
        assert!(err.contains("declared twice"), "{err}");
    }
}
