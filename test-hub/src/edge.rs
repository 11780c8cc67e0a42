//! What stands in front of the repos on today's Hub, each behind a switch of [`crate::Options`]:
//! the rate limiter on `/resolve/` and the signed URLs of the Xet bridge (the CDN that LFS files
//! redirect to). A client with Xet off meets both on huggingface.co (hf-protocol.md 1.10); the
//! test hub reproduces them so that tests show how a client copes, not how it fares on a friendlier
//! hub than the real one.
//!
//! Both take the current time as an argument, so their rules are tested here without waiting.

use std::sync::{Mutex, PoisonError};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use sha2::{Digest, Sha256};

use crate::fixtures::hex;
use crate::server::query_params;

/// Fixed-window counting of resolve requests, answered with the headers the Hub sends
/// (`RateLimit`, `RateLimit-Policy`, draft-ietf-httpapi-ratelimit-headers-09, as
/// huggingface_hub 2.4.0's `parse_ratelimit_headers` reads them).
///
/// A window opens with the first resolve after the previous window closed (rather than on a
/// clock boundary), so a test knows that its first `quota` resolves pass.
#[derive(Debug)]
pub(crate) struct RateLimiter {
    quota: u64,
    window: Duration,
    retry_after: bool,
    current: Mutex<Option<Window>>,
}

#[derive(Debug, Clone, Copy)]
struct Window {
    start: Instant,
    count: u64,
}

/// The rate limiter's word on one resolve.
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct Admission {
    /// Over the quota: answer 429.
    pub(crate) refused: bool,
    /// `RateLimit` and `RateLimit-Policy` (and `Retry-After` on a 429 if asked), for the answer
    /// either way.
    pub(crate) headers: Vec<(String, String)>,
}

impl RateLimiter {
    pub(crate) fn new(quota: u64, window: Duration, retry_after: bool) -> RateLimiter {
        RateLimiter {
            quota,
            window: window.max(Duration::from_millis(1)),
            retry_after,
            current: Mutex::new(None),
        }
    }

    /// Counts one resolve arriving at `now`.
    pub(crate) fn admit(&self, now: Instant) -> Admission {
        let mut current = self.current.lock().unwrap_or_else(PoisonError::into_inner);
        let window = match *current {
            Some(window) if now < window.start + self.window => window,
            _ => Window {
                start: now,
                count: 0,
            },
        };
        let window = Window {
            count: window.count + 1,
            ..window
        };
        *current = Some(window);
        let refused = window.count > self.quota;
        let remaining = self.quota.saturating_sub(window.count);
        // Whole seconds, rounded up: a client that waits `t` (huggingface_hub waits `t + 1`) is
        // past the reset. A window shorter than a second is announced as one second.
        let reset = ceil_seconds((window.start + self.window).saturating_duration_since(now));
        let mut headers = vec![
            (
                "RateLimit".to_owned(),
                format!("\"resolvers\";r={remaining};t={reset}"),
            ),
            (
                "RateLimit-Policy".to_owned(),
                format!(
                    "\"fixed window\";\"resolvers\";q={};w={}",
                    self.quota,
                    ceil_seconds(self.window)
                ),
            ),
        ];
        if refused && self.retry_after {
            headers.push(("Retry-After".to_owned(), reset.to_string()));
        }
        Admission { refused, headers }
    }
}

fn ceil_seconds(duration: Duration) -> u64 {
    duration.as_secs() + u64::from(duration.subsec_nanos() > 0)
}

/// Signs CDN URLs the way the Xet bridge does: for the exact `Range` header of the resolve
/// request that minted the URL (none: the whole file) and until an expiry time. The signature
/// is an HMAC-SHA256 under a secret drawn when the hub starts, so a client cannot make a URL
/// valid for another range or a later time by editing its query.
pub(crate) struct Signer {
    secret: [u8; 32],
    ttl: Duration,
}

impl Signer {
    pub(crate) fn new(ttl: Duration) -> Signer {
        Signer {
            secret: random_secret(),
            ttl,
        }
    }

    /// The query string for a CDN URL of `path`, valid for requests whose `Range` header is
    /// `range` until `now` plus the time to live (whole seconds, rounded down: a zero time to
    /// live mints URLs that have already expired).
    pub(crate) fn sign(&self, path: &str, range: Option<&str>, now: SystemTime) -> String {
        let expires = unix_seconds(now + self.ttl);
        let signature = self.signature(path, expires, range.unwrap_or_default());
        match range {
            Some(range) => format!(
                "expires={expires}&range={}&signature={signature}",
                percent_encode(range)
            ),
            None => format!("expires={expires}&signature={signature}"),
        }
    }

    /// Why a request for `url` (path and query) with this `Range` header is refused at `now`,
    /// if it is.
    pub(crate) fn check(
        &self,
        url: &str,
        range: Option<&str>,
        now: SystemTime,
    ) -> Result<(), String> {
        let path = url.split('?').next().unwrap_or_default();
        let params = query_params(url);
        let param = |name: &str| {
            params
                .iter()
                .find(|(n, _)| n == name)
                .map(|(_, v)| v.as_str())
        };
        let (Some(expires), Some(signature)) = (param("expires"), param("signature")) else {
            return Err(
                "Query-string authentication requires the expires and signature parameters".into(),
            );
        };
        let signed_range = param("range").unwrap_or_default();
        let valid = expires
            .parse()
            .is_ok_and(|expires| self.signature(path, expires, signed_range) == signature);
        if !valid {
            return Err(
                "The request signature we calculated does not match the signature you provided"
                    .into(),
            );
        }
        if expires
            .parse::<u64>()
            .is_ok_and(|expires| unix_seconds(now) >= expires)
        {
            return Err("Request has expired".into());
        }
        let range = range.unwrap_or_default();
        if range != signed_range {
            let describe = |r: &str| {
                if r.is_empty() {
                    "no Range".to_owned()
                } else {
                    format!("Range: {r}")
                }
            };
            return Err(format!(
                "This URL is signed for {}; the request has {}",
                describe(signed_range),
                describe(range)
            ));
        }
        Ok(())
    }

    fn signature(&self, path: &str, expires: u64, range: &str) -> String {
        // A Range header cannot hold a line break: the fields cannot run into each other.
        hmac_sha256(
            &self.secret,
            format!("{path}\n{expires}\n{range}").as_bytes(),
        )
    }
}

fn unix_seconds(time: SystemTime) -> u64 {
    time.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs())
}

/// 32 bytes no client can guess: the standard library's random hash keys, the time and the pid.
fn random_secret() -> [u8; 32] {
    use std::hash::{BuildHasher, RandomState};
    let mut hasher = Sha256::new();
    for i in 0..4u8 {
        hasher.update(RandomState::new().hash_one(i).to_le_bytes());
    }
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    hasher.update(nanos.to_le_bytes());
    hasher.update(std::process::id().to_le_bytes());
    hasher.finalize().into()
}

/// HMAC-SHA256 (RFC 2104) of `message` under a key of at most one block (64 bytes), in hex.
fn hmac_sha256(key: &[u8], message: &[u8]) -> String {
    assert!(
        key.len() <= 64,
        "longer keys are hashed first; not needed here"
    );
    let mut block = [0u8; 64];
    block[..key.len()].copy_from_slice(key);
    let inner = Sha256::new()
        .chain_update(block.map(|b| b ^ 0x36))
        .chain_update(message)
        .finalize();
    let outer = Sha256::new()
        .chain_update(block.map(|b| b ^ 0x5c))
        .chain_update(inner)
        .finalize();
    hex(&outer)
}

/// Escapes everything but RFC 3986's unreserved characters, for a query value.
fn percent_encode(text: &str) -> String {
    text.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => {
                char::from(b).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn header<'a>(admission: &'a Admission, name: &str) -> Option<&'a str> {
        admission
            .headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }

    #[test]
    fn fixed_windows_refuse_beyond_the_quota_until_the_reset() {
        let limiter = RateLimiter::new(2, Duration::from_secs(300), false);
        let start = Instant::now();
        let first = limiter.admit(start);
        assert!(!first.refused);
        assert_eq!(header(&first, "RateLimit"), Some("\"resolvers\";r=1;t=300"));
        assert_eq!(
            header(&first, "RateLimit-Policy"),
            Some("\"fixed window\";\"resolvers\";q=2;w=300")
        );
        let second = limiter.admit(start + Duration::from_secs(10));
        assert!(!second.refused);
        assert_eq!(
            header(&second, "RateLimit"),
            Some("\"resolvers\";r=0;t=290")
        );
        // Every resolve until the reset is refused.
        for (at, reset) in [(10_500, 290), (299_999, 1)] {
            let refused = limiter.admit(start + Duration::from_millis(at));
            assert!(refused.refused);
            let expected = format!("\"resolvers\";r=0;t={reset}");
            assert_eq!(header(&refused, "RateLimit"), Some(expected.as_str()));
            assert_eq!(header(&refused, "Retry-After"), None);
        }
        // The next window opens with the next resolve.
        let next = limiter.admit(start + Duration::from_secs(400));
        assert!(!next.refused);
        assert_eq!(header(&next, "RateLimit"), Some("\"resolvers\";r=1;t=300"));
    }

    #[test]
    fn short_windows_announce_whole_seconds() {
        let limiter = RateLimiter::new(1, Duration::from_millis(1500), true);
        let start = Instant::now();
        limiter.admit(start);
        let refused = limiter.admit(start + Duration::from_millis(1400));
        assert!(refused.refused);
        assert_eq!(header(&refused, "RateLimit"), Some("\"resolvers\";r=0;t=1"));
        assert_eq!(
            header(&refused, "RateLimit-Policy"),
            Some("\"fixed window\";\"resolvers\";q=1;w=2")
        );
        assert_eq!(header(&refused, "Retry-After"), Some("1"));
        assert!(!limiter.admit(start + Duration::from_millis(1500)).refused);
    }

    #[test]
    fn hmac_matches_rfc_4231() {
        // Test case 2 of RFC 4231.
        assert_eq!(
            hmac_sha256(b"Jefe", b"what do ya want for nothing?"),
            "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
    }

    #[test]
    fn signed_urls_hold_for_their_range_and_time_only() {
        let signer = Signer::new(Duration::from_secs(3600));
        let now = SystemTime::now();
        let path = "/blobs/abc";
        let whole = format!("{path}?{}", signer.sign(path, None, now));
        let ranged = format!("{path}?{}", signer.sign(path, Some("bytes=0-99"), now));
        assert!(ranged.contains("&range=bytes%3D0-99&"), "{ranged}");
        assert_eq!(signer.check(&whole, None, now), Ok(()));
        assert_eq!(signer.check(&ranged, Some("bytes=0-99"), now), Ok(()));

        let refused = signer
            .check(&ranged, Some("bytes=100-199"), now)
            .unwrap_err();
        assert_eq!(
            refused,
            "This URL is signed for Range: bytes=0-99; the request has Range: bytes=100-199"
        );
        assert!(signer.check(&ranged, None, now).is_err());
        assert!(signer.check(&whole, Some("bytes=0-"), now).is_err());

        // Editing the query breaks the signature.
        let widened = ranged.replace("bytes%3D0-99", "bytes%3D0-");
        let later = whole.replace("expires=", "expires=9");
        let moved = whole.replace("/blobs/abc", "/blobs/abd");
        for forged in [widened, later, moved, path.to_owned()] {
            let error = signer.check(&forged, Some("bytes=0-"), now).unwrap_err();
            assert!(error.contains("signature"), "{forged}: {error}");
        }
        // Another hub's secret signs differently.
        assert!(
            Signer::new(Duration::from_secs(3600))
                .check(&whole, None, now)
                .is_err()
        );

        let expired = now + Duration::from_secs(3600);
        assert_eq!(
            signer.check(&whole, None, expired),
            Err("Request has expired".into())
        );
        let stillborn = Signer::new(Duration::ZERO);
        let url = format!("{path}?{}", stillborn.sign(path, None, now));
        assert_eq!(
            stillborn.check(&url, None, now),
            Err("Request has expired".into())
        );
    }
}
