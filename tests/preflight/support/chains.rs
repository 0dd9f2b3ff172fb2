//! Certificate chains as CAs and operators make them, by the `openssl` command: a root, an
//! intermediate and a server certificate, each with its own key type, digest and dates
//! (`openssl ca` takes explicit start and end dates), served by OpenSSL's `s_server` with the
//! chain the test chooses.

use std::path::{Path, PathBuf};

use super::servers::openssl;

/// How one certificate is made.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Made {
    /// `openssl genpkey` arguments for its key.
    pub(crate) key: &'static [&'static str],
    /// The digest its issuer signs it with.
    pub(crate) digest: &'static str,
    /// Its validity (`openssl ca` dates, `YYYYMMDDHHMMSSZ`); `None` from yesterday for a year.
    pub(crate) dates: Option<(&'static str, &'static str)>,
}

pub(crate) const P256: &[&str] = &["-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256"];
pub(crate) const P521: &[&str] = &["-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-521"];
pub(crate) const RSA1024: &[&str] = &["-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:1024"];

impl Default for Made {
    fn default() -> Made {
        Made {
            key: P256,
            digest: "sha256",
            dates: None,
        }
    }
}

/// A CA made in `dir`: its certificate `NAME.crt` and key `NAME.key`.
pub(crate) struct Authority {
    dir: PathBuf,
    pub(crate) name: String,
}

const CONFIG: &str = "[ ca ]
default_ca = test_ca
[ test_ca ]
database = index.txt
new_certs_dir = .
serial = serial
policy = any
unique_subject = no
default_days = 365
[ any ]
commonName = supplied
organizationName = optional
";

impl Authority {
    /// A self-signed root.
    pub(crate) fn root(dir: &Path, name: &str, made: Made) -> Authority {
        std::fs::write(dir.join("ca.cnf"), CONFIG).unwrap();
        std::fs::write(dir.join("index.txt"), "").unwrap();
        std::fs::write(dir.join("serial"), "1000\n").unwrap();
        let root = Authority {
            dir: dir.to_path_buf(),
            name: name.to_string(),
        };
        root.sign(None, name, &format!("/CN={name}/O=Test Chains"), made, CA);
        root
    }

    /// A CA certificate signed by this one.
    pub(crate) fn intermediate(&self, name: &str, made: Made) -> Authority {
        self.sign(
            Some(self),
            name,
            &format!("/CN={name}/O=Test Chains"),
            made,
            CA,
        );
        Authority {
            dir: self.dir.clone(),
            name: name.to_string(),
        }
    }

    /// A server certificate for `san` (`DNS:x,IP:y`) signed by this CA; its files' paths.
    pub(crate) fn server(&self, name: &str, san: &str, made: Made) -> (String, String) {
        let ext = format!("{SERVER}subjectAltName = {san}\n");
        self.sign(Some(self), name, &format!("/CN={name}"), made, &ext);
        (self.file(name, "crt"), self.file(name, "key"))
    }

    /// The path of this CA's certificate.
    pub(crate) fn crt(&self) -> String {
        self.file(&self.name, "crt")
    }

    fn file(&self, name: &str, ext: &str) -> String {
        self.dir.join(format!("{name}.{ext}")).display().to_string()
    }

    /// Makes `name`'s key and certificate, signed by `issuer` (itself when `None`).
    fn sign(&self, issuer: Option<&Authority>, name: &str, subject: &str, made: Made, ext: &str) {
        let dir = &self.dir;
        let (key, csr) = (format!("{name}.key"), format!("{name}.csr"));
        let mut genpkey = vec!["genpkey", "-out", &key];
        genpkey.extend_from_slice(made.key);
        openssl(dir, &genpkey);
        openssl(
            dir,
            &["req", "-new", "-key", &key, "-subj", subject, "-out", &csr],
        );
        let ext_file = format!("{name}.ext");
        std::fs::write(dir.join(&ext_file), format!("[ x ]\n{ext}")).unwrap();
        let (start, end) = made.dates.unwrap_or(("", ""));
        let crt = format!("{name}.crt");
        let (issuer_crt, issuer_key) = match issuer {
            Some(ca) => (format!("{}.crt", ca.name), format!("{}.key", ca.name)),
            None => (crt.clone(), key.clone()),
        };
        let mut args = vec![
            "ca",
            "-batch",
            "-notext",
            "-config",
            "ca.cnf",
            "-in",
            &csr,
            "-out",
            &crt,
            "-md",
            made.digest,
            "-extfile",
            &ext_file,
            "-extensions",
            "x",
            "-keyfile",
            &issuer_key,
        ];
        match issuer {
            Some(_) => args.extend(["-cert", issuer_crt.as_str()]),
            None => args.push("-selfsign"),
        }
        if !start.is_empty() {
            args.extend(["-startdate", start, "-enddate", end]);
        }
        openssl(dir, &args);
    }
}

const CA: &str = "basicConstraints = critical,CA:true\nkeyUsage = critical,keyCertSign,cRLSign\nsubjectKeyIdentifier = hash\n";
const SERVER: &str = "basicConstraints = CA:false\nkeyUsage = critical,digitalSignature,keyEncipherment\nextendedKeyUsage = serverAuth\n";

/// `s_server` with `crt` and `key`, sending `chain` (files) after its certificate, at a
/// security level that lets it load weak certificates (a server misconfigured so).
pub(crate) fn serve(crt: &str, key: &str, chain: &[&str]) -> Option<super::servers::SServer> {
    let bundle = PathBuf::from(format!("{crt}.chain.pem"));
    let mut text = String::new();
    for file in chain {
        text.push_str(&std::fs::read_to_string(file).unwrap());
    }
    std::fs::write(&bundle, text).unwrap();
    let bundle = bundle.display().to_string();
    let mut args = vec!["-cert", crt, "-key", key, "-cipher", "DEFAULT@SECLEVEL=0"];
    if !chain.is_empty() {
        args.extend(["-cert_chain", bundle.as_str()]);
    }
    super::servers::SServer::start(&args)
}
