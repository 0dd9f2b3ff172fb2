//! The node's own files, judged before any connection: the certificate and key it
//! authenticates with, the CAs it trusts, and the proxy setting Kong validates at start. Each
//! is a check of probe `file` and role `local` whose verdict is reached here, with the file
//! and the kong.conf line it comes from; what the files hold (the identity, the CAs) is handed
//! to the network checks, so each file is read once.
//!
//! Kong's own rules are followed (kong/conf_loader/parse.lua in Kong's source): a certificate
//! setting names a file, or holds the PEM itself or its base64; a data plane needs both
//! `cluster_cert` and `cluster_cert_key`; `proxy_server` takes `http` and `https` only;
//! `cluster_use_proxy = on` needs `proxy_server`.

use std::path::Path;
use std::sync::Arc;

use base64::Engine;
use rustls::pki_types::CertificateDer;
use rustls::sign::{CertifiedKey, SigningKey};
use time::OffsetDateTime;

use super::{KongConf, Setting};
use crate::check::{CheckSpec, Finding};
use crate::failure::{Cause, Failure, FailureKind, Peer, Phase, Severity};
use crate::probe::tls::{certs_of, facts, key_matches, signing_key_of};
use crate::profile::Role;
use crate::report::Status;
use crate::target::Probe;

/// How the files are judged: `--cert-warn-days`, and the time it is.
#[derive(Debug, Clone, Copy)]
pub struct Inspect {
    /// `--cert-warn-days`: a certificate that expires sooner is a warning.
    pub warn_days: i64,
    /// The time the dates are judged at.
    pub now: OffsetDateTime,
}

/// What the files hold, for the network checks.
#[derive(Debug, Clone, Default)]
pub struct Material {
    /// `cluster_cert` with `cluster_cert_key`, when both can be used.
    pub identity: Option<Arc<CertifiedKey>>,
    /// The CAs a pki-mode data plane trusts: `cluster_ca_cert` and `lua_ssl_trusted_certificate`.
    pub trust: Vec<CertificateDer<'static>>,
    /// Shared mode: the certificate the control plane must present (`cluster_cert` itself).
    pub pinned: Option<CertificateDer<'static>>,
}

/// Why the cluster checks cannot run as the node would, and which flag lifts it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Blocked {
    /// The node's certificate and key cannot be used; `--client-cert` gives another pair.
    Identity(String),
    /// Kong would not start with its proxy setting; `--proxy` gives another route.
    Proxy(String),
}

/// The findings, the material, and what blocks the cluster checks.
#[derive(Debug, Default)]
pub(super) struct Inspection {
    pub findings: Vec<CheckSpec>,
    pub material: Material,
    pub blocked: Vec<Blocked>,
}

/// A verdict: the words of an ok check (for its note), or its status and failure.
type Verdict = Result<String, (Status, Failure)>;

/// One finding about a setting.
struct About<'a> {
    conf: &'a KongConf,
    key: &'a str,
    setting: &'a Setting,
    /// The file the setting names, or `the value of KEY` when it holds the PEM itself.
    subject: String,
}

impl About<'_> {
    /// `cluster_cert /etc/kong/cluster.crt (/etc/kong/kong.conf line 9)`.
    fn said(&self) -> String {
        format!(
            "{} {} ({})",
            self.key,
            crate::sanitize::shorten(&self.subject),
            self.conf.whence(self.setting)
        )
    }

    /// A finding of `kind`'s general case; its status follows the kind's severity.
    fn fail(&self, kind: FailureKind, message: String, hint: String) -> (Status, Failure) {
        self.because(Cause::General(kind), kind, message, hint)
    }

    /// A finding with a cause finer than its kind; its status follows the severity of both.
    fn because(
        &self,
        cause: Cause,
        kind: FailureKind,
        message: String,
        hint: String,
    ) -> (Status, Failure) {
        let peer = Peer {
            host: &self.subject,
            port: None,
            ip: None,
        };
        // A finding's hint names the setting and file: written here, once, for its kind.
        let failure = Failure::new(kind, Phase::File, message, peer)
            .with_hint(hint)
            .because(cause, peer, Default::default());
        let status = match failure.severity() {
            Severity::Warn => Status::Warn,
            Severity::Fail => Status::Fail,
        };
        (status, failure)
    }

    /// The check of this finding, `kong.conf.ID`.
    fn check(&self, id: &str, verdict: Verdict) -> CheckSpec {
        let mut spec = super::spec(
            id,
            self.key.to_string(),
            Role::Local,
            Probe::File,
            format!("{} ({})", self.key, self.conf.whence(self.setting)),
        );
        spec.endpoint.host = self.subject.clone();
        let (status, failure) = match verdict {
            Ok(words) => {
                if let Some(note) = spec.endpoint.note.as_mut() {
                    note.push_str(&format!("; {words}"));
                }
                (Status::Ok, None)
            }
            Err((status, failure)) => (status, Some(failure)),
        };
        spec.finding = Some(Finding { status, failure });
        spec
    }
}

/// Judges the files and proxy setting of a data plane's kong.conf; `pki` is `cluster_mtls`.
pub(super) fn inspect(conf: &KongConf, pki: bool, how: Inspect) -> Inspection {
    let mut out = Inspection::default();
    let certs = identity(conf, how, &mut out);
    match pki {
        true => trust(conf, how.now, &mut out),
        false => out.material.pinned = certs.and_then(|c| c.into_iter().next()),
    }
    // Kong loads the files of lua_ssl_trusted_certificate in either mode.
    trusted_files(conf, pki, how.now, &mut out);
    proxy(conf, &mut out);
    out
}

/// The PEM of a certificate or key setting: the file it names or, as Kong also takes, the PEM
/// itself or its base64 (kong/conf_loader/parse.lua: `try_decode_base64` when no file exists).
fn pem(key: &str, setting: &Setting) -> (Result<Vec<u8>, String>, String) {
    let value = setting.value.as_str();
    let path = Path::new(value);
    // Only a path with nothing at it may be the PEM itself: one this user may not reach, or a
    // loop of links, is a file that cannot be read, and said so.
    let absent =
        std::fs::symlink_metadata(path).is_err_and(|e| e.kind() == std::io::ErrorKind::NotFound);
    if !absent {
        let read = crate::files::read_capped(path).map_err(|e| format!("cannot be read: {e}"));
        return (read, value.to_string());
    }
    let inline = format!("(the value of {key} itself)");
    if value.contains("-----BEGIN") {
        return (Ok(value.replace("\\n", "\n").into_bytes()), inline);
    }
    let decoded = base64::engine::general_purpose::STANDARD.decode(value.trim());
    match decoded {
        Ok(bytes) if String::from_utf8_lossy(&bytes).contains("-----BEGIN") => (Ok(bytes), inline),
        _ => {
            let dir = path.parent().filter(|d| !d.as_os_str().is_empty());
            let why = match dir.is_some_and(|d| !d.exists()) {
                true => "does not exist (nor does its directory)",
                false => "does not exist",
            };
            (Err(why.to_string()), value.to_string())
        }
    }
}

/// `cluster_cert` and `cluster_cert_key`: the node's identity. Returns the certificates.
fn identity(
    conf: &KongConf,
    how: Inspect,
    out: &mut Inspection,
) -> Option<Vec<CertificateDer<'static>>> {
    let (Some(cert), Some(key)) = (conf.given("cluster_cert"), conf.given("cluster_cert_key"))
    else {
        out.findings.push(no_identity(conf));
        return None;
    };
    let (cert_pem, subject) = pem("cluster_cert", cert);
    let about = About {
        conf,
        key: "cluster_cert",
        setting: cert,
        subject,
    };
    let certs = cert_pem
        .map_err(|why| unreadable(&about, &why))
        .and_then(|bytes| certs_of(&bytes).map_err(|why| invalid_cert(&about, &why)));
    let verdict = certs.as_ref().map_or_else(
        |e| Err(e.clone()),
        |certs| client_cert_verdict(&about, &certs[0], how),
    );
    let (key_pem, subject) = pem("cluster_cert_key", key);
    let key_about = About {
        conf,
        key: "cluster_cert_key",
        setting: key,
        subject,
    };
    let signing = key_pem
        .map_err(|why| unreadable(&key_about, &why))
        .and_then(|bytes| private_key(&key_about, &bytes));
    let key_verdict = key_verdict(&key_about, &about, certs.as_ref().ok(), signing.as_ref());
    out.findings.push(about.check("cluster-cert", verdict));
    let usable = key_verdict.is_ok();
    out.findings
        .push(key_about.check("cluster-cert-key", key_verdict));
    match (certs.clone(), signing, usable) {
        (Ok(certs), Ok(signing), true) => {
            out.material.identity = Some(Arc::new(CertifiedKey::new(certs, signing)));
        }
        _ => out.blocked.push(Blocked::Identity(
            "the node's certificate and key cannot be used (see kong.conf.cluster-cert and kong.conf.cluster-cert-key); pass --client-cert and --client-key to check the path with another pair".into(),
        )),
    }
    certs.ok()
}

/// The finding of a data plane without both `cluster_cert` and `cluster_cert_key`.
fn no_identity(conf: &KongConf) -> CheckSpec {
    let missing = conf.get("cluster_cert");
    let about = About {
        conf,
        key: "cluster_cert",
        setting: &missing,
        subject: conf.path.display().to_string(),
    };
    let failure = about.fail(
        FailureKind::ConfInvalid,
        format!(
            "{} does not set both cluster_cert and cluster_cert_key: Kong does not start a data plane without them (\"cluster certificate and key must be provided to use Hybrid mode\")",
            conf.path.display()
        ),
        "Set cluster_cert and cluster_cert_key to the node's certificate and key (for Konnect, the data plane certificate made in the Gateway Manager); the checks below ran without a client certificate.".into(),
    );
    about.check("cluster-cert", Err(failure))
}

/// The private key of PEM text, or the finding that it cannot be used.
fn private_key(about: &About<'_>, bytes: &[u8]) -> Result<Arc<dyn SigningKey>, (Status, Failure)> {
    signing_key_of(bytes, "it", Path::new(&about.subject)).map_err(|why| {
        about.fail(
            FailureKind::FileInvalid,
            format!("{}: {why}", about.said()),
            format!(
                "Point cluster_cert_key at the node's unencrypted private key in PEM ({} holds none Kong can use).",
                about.subject
            ),
        )
    })
}

/// Whether the key is usable and is the certificate's.
fn key_verdict(
    key: &About<'_>,
    cert: &About<'_>,
    certs: Option<&Vec<CertificateDer<'static>>>,
    signing: Result<&Arc<dyn SigningKey>, &(Status, Failure)>,
) -> Verdict {
    let signing = signing.map_err(Clone::clone)?;
    let Some(leaf) = certs.and_then(|c| c.first()) else {
        return Ok("a private key (not compared: the certificate cannot be read)".into());
    };
    match key_matches(signing.as_ref(), leaf) {
        true => Ok(format!("the private key of {}", cert.subject)),
        false => Err(key.fail(
            FailureKind::KeyMismatch,
            format!(
                "{} is not the private key of cluster_cert {}: the handshake with the control plane cannot succeed",
                key.said(),
                cert.subject
            ),
            format!(
                "Point cluster_cert_key at the key {} was issued for (openssl x509 -noout -pubkey -in CERT and openssl pkey -pubout -in KEY print the same key when they match), or issue a new certificate for this key.",
                cert.subject
            ),
        )),
    }
}

/// The dates and key usage of the node's certificate.
fn client_cert_verdict(about: &About<'_>, leaf: &CertificateDer<'_>, how: Inspect) -> Verdict {
    let Ok((_, cert)) = x509_parser::parse_x509_certificate(leaf.as_ref()) else {
        return Err(invalid_cert(
            about,
            "holds a certificate that cannot be parsed",
        ));
    };
    let f = facts(leaf);
    let validity = cert.validity();
    let days_left = (validity.not_after.to_datetime() - how.now).whole_days();
    dates(about, &f, validity, how)?;
    if let Ok(Some(eku)) = cert.extended_key_usage()
        && !eku.value.client_auth
        && !eku.value.any
    {
        return Err(about.fail(
            FailureKind::CertUsage,
            format!(
                "{}: {} has an extended key usage without TLS client authentication (clientAuth): a control plane that checks it refuses the node",
                about.said(),
                f.subject
            ),
            "Issue the node a certificate with extendedKeyUsage = clientAuth (or without an extended key usage, as kong hybrid gen_cert makes it) and point cluster_cert at it.".into(),
        ));
    }
    if days_left <= how.warn_days {
        return Err(about.fail(
            FailureKind::CertExpiring,
            format!(
                "{}: {} expires on {}, in {days_left} days",
                about.said(),
                f.subject,
                f.not_after
            ),
            "Issue the node a new certificate before this one expires, and point cluster_cert and cluster_cert_key at it; lower --cert-warn-days if renewal this close to expiry is planned.".into(),
        ));
    }
    Ok(format!(
        "{}, valid until {} ({days_left} days left)",
        f.subject, f.not_after
    ))
}

/// The node's certificate expired, or not valid yet by this host's clock.
fn dates(
    about: &About<'_>,
    f: &crate::probe::tls::Facts,
    validity: &x509_parser::certificate::Validity,
    how: Inspect,
) -> Result<(), (Status, Failure)> {
    let not_after = validity.not_after.to_datetime();
    if how.now > not_after {
        return Err(about.fail(
            FailureKind::CertExpired,
            format!(
                "{}: {} expired on {}, {} days ago: the control plane refuses this node",
                about.said(),
                f.subject,
                f.not_after,
                (how.now - not_after).whole_days()
            ),
            "Issue the node a new certificate (for Konnect, a new data plane certificate in the Gateway Manager; for self-managed hybrid mode, one from the cluster CA, or kong hybrid gen_cert in shared mode) and point cluster_cert and cluster_cert_key at it.".into(),
        ));
    }
    if how.now < validity.not_before.to_datetime() {
        return Err(about.fail(
            FailureKind::CertNotYetValid,
            format!(
                "{}: {} is not valid before {}, and this host's clock reads {}",
                about.said(),
                f.subject,
                f.not_before,
                rfc3339(how.now)
            ),
            "Check this host's clock (timedatectl; NTP) against the certificate's start date: a clock behind makes a new certificate look not yet valid.".into(),
        ));
    }
    Ok(())
}

/// A file that cannot be read.
fn unreadable(about: &About<'_>, why: &str) -> (Status, Failure) {
    about.fail(
        FailureKind::FileUnreadable,
        format!("{}: {why}", about.said()),
        format!(
            "Check that {} exists on this host and that the user Kong runs as may read it (ls -l shows owner and mode); or correct {} in kong.conf.",
            about.subject, about.key
        ),
    )
}

/// A file that holds no usable certificate.
fn invalid_cert(about: &About<'_>, why: &str) -> (Status, Failure) {
    about.fail(
        FailureKind::FileInvalid,
        format!("{}: {why}", about.said()),
        format!(
            "Point {} at a PEM certificate file (-----BEGIN CERTIFICATE-----); a DER file converts with openssl x509 -inform der -in FILE -out FILE.pem.",
            about.key
        ),
    )
}

/// `cluster_ca_cert`: the CA a pki-mode data plane verifies its control plane with.
fn trust(conf: &KongConf, now: OffsetDateTime, out: &mut Inspection) {
    let Some(setting) = conf.given("cluster_ca_cert") else {
        return;
    };
    let at = (conf, now);
    if let Some(certs) = ca_file(at, ("cluster_ca_cert", setting), "cluster-ca-cert", out) {
        out.material.trust.extend(certs);
    }
}

/// The most files of `lua_ssl_trusted_certificate` read, and the most bytes in all: a
/// mistaken value (one path pasted thousands of times) costs a bounded time.
const MAX_TRUST_FILES: usize = 64;
const MAX_TRUST_BYTES: u64 = 64 * 1024 * 1024;

/// The files of `lua_ssl_trusted_certificate` (`system` is the system store, not a file).
fn trusted_files(conf: &KongConf, pki: bool, now: OffsetDateTime, out: &mut Inspection) {
    let setting = conf.get("lua_ssl_trusted_certificate");
    let files: Vec<String> = setting
        .value
        .split(',')
        .map(str::trim)
        .filter(|f| !f.is_empty() && *f != "system")
        .map(str::to_string)
        .collect();
    let mut total = 0;
    for (i, file) in files.iter().enumerate() {
        total += std::fs::metadata(file).map_or(0, |m| m.len());
        if i == MAX_TRUST_FILES || total > MAX_TRUST_BYTES {
            let about = About {
                conf,
                key: "lua_ssl_trusted_certificate",
                setting: &setting,
                subject: format!("(a list of {} files)", files.len()),
            };
            let failure = about.because(
                Cause::TrustListCut,
                FailureKind::FileInvalid,
                format!(
                    "{}: preflight read the first {i} files and not the other {}, past its limit of {MAX_TRUST_FILES} files and {} MiB",
                    about.said(),
                    files.len() - i,
                    MAX_TRUST_BYTES >> 20
                ),
                "List each CA bundle once in lua_ssl_trusted_certificate; join many CAs into one PEM file.".into(),
            );
            out.findings
                .push(about.check("trusted-certificate-limit", Err(failure)));
            break;
        }
        let one = Setting {
            value: file.clone(),
            ..setting.clone()
        };
        let id = format!("trusted-certificate-{}", i + 1);
        let certs = ca_file((conf, now), ("lua_ssl_trusted_certificate", &one), &id, out);
        if let (true, Some(certs)) = (pki, certs) {
            out.material.trust.extend(certs);
        }
    }
}

/// A CA file: readable, holding certificates, not all expired. Returns its certificates.
fn ca_file(
    (conf, now): (&KongConf, OffsetDateTime),
    (key, setting): (&str, &Setting),
    id: &str,
    out: &mut Inspection,
) -> Option<Vec<CertificateDer<'static>>> {
    let (bytes, subject) = pem(key, setting);
    let about = About {
        conf,
        key,
        setting,
        subject,
    };
    let certs = bytes
        .map_err(|why| unreadable(&about, &why))
        .and_then(|bytes| certs_of(&bytes).map_err(|why| invalid_cert(&about, &why)));
    let verdict = match &certs {
        Err(e) => Err(e.clone()),
        Ok(certs) => ca_dates(&about, certs, now),
    };
    out.findings.push(about.check(id, verdict));
    certs.ok()
}

/// A CA file whose certificates have all expired verifies nothing.
fn ca_dates(about: &About<'_>, certs: &[CertificateDer<'static>], now: OffsetDateTime) -> Verdict {
    let expired: Vec<_> = certs
        .iter()
        .filter_map(|c| {
            let (_, cert) = x509_parser::parse_x509_certificate(c.as_ref()).ok()?;
            (now > cert.validity().not_after.to_datetime()).then(|| facts(c))
        })
        .collect();
    let count = certs.len();
    match (expired.len(), expired.first()) {
        (n, Some(first)) if n == count => Err(about.fail(
            FailureKind::CertExpired,
            format!(
                "{}: every certificate in it has expired ({}, on {})",
                about.said(),
                first.subject,
                first.not_after
            ),
            format!(
                "Replace {} with the current CA certificate of the control plane's chain: an expired CA verifies nothing, so the data plane cannot trust its control plane.",
                about.subject
            ),
        )),
        (0, _) => Ok(format!("{count} CA certificates, none expired")),
        (n, _) => Ok(format!("{count} CA certificates, {n} of them expired")),
    }
}

/// `proxy_server` as Kong validates it at start: a URL with the scheme `http` or `https`, and
/// set whenever `cluster_use_proxy` is on.
fn proxy(conf: &KongConf, out: &mut Inspection) {
    let use_proxy = conf
        .given("cluster_use_proxy")
        .is_some_and(|s| matches!(s.value.to_ascii_lowercase().as_str(), "on" | "true"));
    let Some(server) = conf.given("proxy_server") else {
        if use_proxy {
            no_proxy_server(conf, out);
        }
        return;
    };
    let shown = match server.cut {
        true => "***".to_string(),
        false => crate::sanitize::redact(&server.value),
    };
    let about = About {
        conf,
        key: "proxy_server",
        setting: server,
        subject: conf.path.display().to_string(),
    };
    let scheme = server
        .value
        .split_once("://")
        .map(|(s, _)| s.to_ascii_lowercase());
    let refusal = match scheme.as_deref() {
        Some("http" | "https") => None,
        None => Some("missing scheme".to_string()),
        Some(other) => Some(format!(
            "only supports \"http\" and \"https\", got {}",
            crate::sanitize::message(other)
        )),
    };
    let verdict = match &refusal {
        None => Ok(format!("{shown}, a scheme Kong supports")),
        Some(words) => Err(about.fail(
            FailureKind::ConfInvalid,
            format!(
                "proxy_server = {shown} ({}): Kong does not start with it (\"proxy_server {words}\"); preflight could go through such a proxy, Kong cannot",
                conf.whence(server)
            ),
            "Set proxy_server to an http:// (or https://) proxy URL: Kong's cluster connections use HTTP CONNECT, not SOCKS.".into(),
        )),
    };
    out.findings.push(about.check("proxy-server", verdict));
    if let (Some(words), true) = (refusal, use_proxy) {
        out.blocked.push(Blocked::Proxy(format!(
            "Kong does not start with proxy_server {words}; pass --proxy to check the path through a proxy"
        )));
    }
}

/// `cluster_use_proxy = on` without `proxy_server`: Kong does not start.
fn no_proxy_server(conf: &KongConf, out: &mut Inspection) {
    let setting = conf.get("cluster_use_proxy");
    let about = About {
        conf,
        key: "cluster_use_proxy",
        setting: &setting,
        subject: conf.path.display().to_string(),
    };
    let reason = format!(
        "cluster_use_proxy is on ({}) but proxy_server is not set: Kong does not start so (\"cluster_use_proxy is turned on but no proxy_server is configured\")",
        conf.whence(&setting)
    );
    let failure = about.fail(
        FailureKind::ConfInvalid,
        reason.clone(),
        "Set proxy_server to the site's proxy (http://HOST:PORT, with USER:PASSWORD@ when it wants credentials), or turn cluster_use_proxy off if the node reaches its control plane directly.".into(),
    );
    out.findings.push(about.check("proxy-server", Err(failure)));
    out.blocked.push(Blocked::Proxy(format!(
        "{reason}; pass --proxy to check the path through a proxy"
    )));
}

fn rfc3339(t: OffsetDateTime) -> String {
    t.format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_default()
}
