//! TLS interception: recognising a chain signed by an inspection proxy or firewall product.

/// Words that appear in the issuer or CA names of TLS inspection products. Matched
/// case-insensitively against the names in a presented chain (never the leaf's own subject).
const PRODUCTS: &[(&str, &str)] = &[
    ("zscaler", "Zscaler"),
    ("netskope", "Netskope"),
    ("palo alto networks", "Palo Alto Networks"),
    ("paloaltonetworks", "Palo Alto Networks"),
    ("fortinet", "Fortinet"),
    ("fortigate", "Fortinet FortiGate"),
    ("blue coat", "Blue Coat"),
    ("bluecoat", "Blue Coat"),
    ("proxysg", "Blue Coat ProxySG"),
    ("symantec web", "Symantec Web Security"),
    ("cisco umbrella", "Cisco Umbrella"),
    ("opendns", "Cisco Umbrella (OpenDNS)"),
    ("sophos", "Sophos"),
    ("forcepoint", "Forcepoint"),
    ("websense", "Forcepoint (Websense)"),
    ("check point", "Check Point"),
    ("checkpoint", "Check Point"),
    ("mcafee", "McAfee Web Gateway"),
    ("skyhigh", "Skyhigh Security"),
    ("kaspersky", "Kaspersky"),
    ("mitmproxy", "mitmproxy"),
    ("charles proxy", "Charles Proxy"),
    ("fiddler", "Fiddler"),
    ("portswigger", "Burp Suite (PortSwigger)"),
    ("burp", "Burp Suite"),
    ("cloudflare for teams", "Cloudflare Zero Trust Gateway"),
    ("menlo security", "Menlo Security"),
    ("iboss", "iboss"),
    ("barracuda", "Barracuda"),
    ("sonicwall", "SonicWall"),
    ("watchguard", "WatchGuard"),
    ("untangle", "Untangle"),
    ("trend micro", "Trend Micro"),
    ("eset ssl filter", "ESET"),
    ("avast", "Avast"),
    ("bitdefender", "Bitdefender"),
    ("lightspeed", "Lightspeed Systems"),
    ("securly", "Securly"),
    ("contentkeeper", "ContentKeeper"),
    ("smoothwall", "Smoothwall"),
    ("cato networks", "Cato Networks"),
    ("squid", "Squid (ssl-bump)"),
];

/// The inspection product named in `names` (issuer and CA subject names), if any.
pub(crate) fn product<'a>(names: impl IntoIterator<Item = &'a str>) -> Option<&'static str> {
    for name in names {
        let lower = name.to_ascii_lowercase();
        if let Some((_, product)) = PRODUCTS.iter().find(|(word, _)| lower.contains(word)) {
            return Some(product);
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_known_products() {
        assert_eq!(
            product(["CN=Zscaler Intermediate Root CA (zscaler.net), O=Zscaler Inc."]),
            Some("Zscaler")
        );
        assert_eq!(product(["CN=FortiGate CA, O=Fortinet"]), Some("Fortinet"));
        assert_eq!(product(["CN=mitmproxy, O=mitmproxy"]), Some("mitmproxy"));
        assert_eq!(product(["CN=DO_NOT_TRUST_FiddlerRoot"]), Some("Fiddler"));
        assert_eq!(
            product(["CN=PortSwigger CA, OU=PortSwigger CA"]),
            Some("Burp Suite (PortSwigger)")
        );
    }

    #[test]
    fn public_cas_are_not_products() {
        for issuer in [
            "CN=R11, O=Let's Encrypt, C=US",
            "CN=WR2, O=Google Trust Services, C=US",
            "CN=DigiCert Global G2 TLS RSA SHA256 2020 CA1, O=DigiCert Inc, C=US",
            "CN=Amazon RSA 2048 M02, O=Amazon, C=US",
            "CN=Cloudflare Inc ECC CA-3, O=Cloudflare, Inc., C=US",
            "CN=Sectigo RSA Domain Validation Secure Server CA, O=Sectigo Limited",
        ] {
            assert_eq!(product([issuer]), None, "{issuer}");
        }
    }
}
