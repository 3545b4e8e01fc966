//! The signature of a delivery: `X-Trends-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256 of
//! "<t>.<body>">`, keyed with `webhooks.secret` (the Stripe scheme).
//!
//! Why the timestamp is signed: a captured delivery replayed later carries its old `t`, which
//! the receiver refuses once it is older than its tolerance (5 minutes, say); changing `t`
//! breaks the HMAC. Each attempt is signed anew with the time it is sent, over the same body.
//! Why `v1=`: a later scheme can be sent next to it while receivers move over.
//!
//! A receiver verifies a delivery so:
//! 1. take `t` and every `v1` from `X-Trends-Signature` (split on `,`, then on the first `=`);
//! 2. refuse it if `t` is more than its tolerance (say 300 s) away from its own clock;
//! 3. compute HMAC-SHA256 with the shared secret over the bytes `<t>.<raw body>` (the body
//!    exactly as received, before any JSON parsing) and compare its hex with `v1` in constant
//!    time;
//! 4. deduplicate on `X-Trends-Event-Id` (also the body's `id`): a retry, a restarted API or a
//!    second replica may send the same event again.

use hmac::{Hmac, Mac};
use secrecy::{ExposeSecret, SecretString};
use sha2::Sha256;

use super::event::hex;

/// The header carrying the signature.
pub const SIGNATURE_HEADER: &str = "X-Trends-Signature";
/// The header carrying the event id (also the body's `id`).
pub const EVENT_ID_HEADER: &str = "X-Trends-Event-Id";

/// Signs bodies with the key. Its `Debug` shows nothing of the key.
#[derive(Clone)]
pub struct Signer {
    /// The HMAC keyed once; each signature works on a clone.
    keyed: Hmac<Sha256>,
}

impl std::fmt::Debug for Signer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Signer([REDACTED])")
    }
}

impl Signer {
    pub fn new(secret: &SecretString) -> Self {
        // HMAC takes a key of any length (a long one is hashed first): this cannot fail.
        let keyed = <Hmac<Sha256> as Mac>::new_from_slice(secret.expose_secret().as_bytes())
            .unwrap_or_else(|_| unreachable!("HMAC accepts keys of any length"));
        Signer { keyed }
    }

    /// The `X-Trends-Signature` value for `body` sent at `unix_seconds`.
    pub fn header(&self, unix_seconds: u64, body: &[u8]) -> String {
        let mut mac = self.keyed.clone();
        mac.update(unix_seconds.to_string().as_bytes());
        mac.update(b".");
        mac.update(body);
        format!("t={unix_seconds},v1={}", hex(&mac.finalize().into_bytes()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signs_t_dot_body_with_standard_hmac_sha256() {
        // The header is the HMAC of "<t>.<body>", done here by hand.
        let signer = Signer::new(&SecretString::from("Jefe"));
        let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(b"Jefe").expect("key");
        mac.update(b"1700000000.{\"a\":1}");
        let expected = hex(&mac.finalize().into_bytes());
        assert_eq!(
            signer.header(1_700_000_000, b"{\"a\":1}"),
            format!("t=1700000000,v1={expected}")
        );
        // And the HMAC itself is the standard one (RFC 4231, test case 2).
        let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(b"Jefe").expect("key");
        mac.update(b"what do ya want for nothing?");
        assert_eq!(
            hex(&mac.finalize().into_bytes()),
            "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
    }

    #[test]
    fn debug_hides_the_key() {
        let signer = Signer::new(&SecretString::from("super-secret-key"));
        assert!(!format!("{signer:?}").contains("super-secret"));
    }
}
