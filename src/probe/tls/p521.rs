//! ECDSA over P-521 for the TLS client. The ring provider verifies P-256 and P-384 only, so a
//! server certificate on P-521 (or a chain signed by a P-521 CA) failed as if the server were
//! at fault. RustCrypto's `p521` (pure Rust) verifies it here, added to the provider's
//! algorithms for both the chain and the handshake's signature (TLS 1.3's
//! `ecdsa_secp521r1_sha512`). Only verification: no P-521 key signs anything here.

use p521::ecdsa::signature::hazmat::PrehashVerifier;
use p521::ecdsa::{Signature, VerifyingKey};
use rustls::SignatureScheme;
use rustls::crypto::WebPkiSupportedAlgorithms;
use rustls::pki_types::{
    AlgorithmIdentifier, InvalidSignature, SignatureVerificationAlgorithm, alg_id,
};

/// ECDSA with a P-521 key over one digest.
#[derive(Debug)]
struct P521 {
    signature: AlgorithmIdentifier,
    digest: &'static ring::digest::Algorithm,
}

impl SignatureVerificationAlgorithm for P521 {
    fn verify_signature(
        &self,
        public_key: &[u8],
        message: &[u8],
        signature: &[u8],
    ) -> Result<(), InvalidSignature> {
        let key = VerifyingKey::from_sec1_bytes(public_key).map_err(|_| InvalidSignature)?;
        let signature = Signature::from_der(signature).map_err(|_| InvalidSignature)?;
        let digest = ring::digest::digest(self.digest, message);
        key.verify_prehash(digest.as_ref(), &signature)
            .map_err(|_| InvalidSignature)
    }

    fn public_key_alg_id(&self) -> AlgorithmIdentifier {
        alg_id::ECDSA_P521
    }

    fn signature_alg_id(&self) -> AlgorithmIdentifier {
        self.signature
    }
}

/// P-521 with SHA-512 (what CAs and TLS 1.3 use) and with SHA-384. SHA-256 is shorter than
/// half the curve's order, which the ECDSA verifier refuses; no CA signs so.
static ECDSA_P521_SHA512: &dyn SignatureVerificationAlgorithm = &P521 {
    signature: alg_id::ECDSA_SHA512,
    digest: &ring::digest::SHA512,
};
static ECDSA_P521_SHA384: &dyn SignatureVerificationAlgorithm = &P521 {
    signature: alg_id::ECDSA_SHA384,
    digest: &ring::digest::SHA384,
};

/// What verifies TLS 1.3's `ecdsa_secp521r1_sha512`.
static TLS13_P521: &[&dyn SignatureVerificationAlgorithm] = &[&P521 {
    signature: alg_id::ECDSA_SHA512,
    digest: &ring::digest::SHA512,
}];

/// `base`'s algorithms with P-521's added: made once per process (the lists must live as long
/// as it does).
pub(super) fn with_p521(base: WebPkiSupportedAlgorithms) -> WebPkiSupportedAlgorithms {
    let mut all = base.all.to_vec();
    all.extend([ECDSA_P521_SHA512, ECDSA_P521_SHA384]);
    let mut mapping = base.mapping.to_vec();
    mapping.push((SignatureScheme::ECDSA_NISTP521_SHA512, TLS13_P521));
    WebPkiSupportedAlgorithms {
        all: Vec::leak(all),
        mapping: Vec::leak(mapping),
    }
}
