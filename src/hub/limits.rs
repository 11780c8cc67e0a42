//! Rate limits: what a `429` says (`RateLimit`, `RateLimit-Policy`, as huggingface_hub 2.4.0
//! reads them, after draft-ietf-httpapi-ratelimit-headers), and the pause every request of a
//! run then takes, so that one worker's `429` stops them all until the window resets.

use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

/// The longest wait a `429` can ask for: two of the Hub's 5-minute windows.
const MAX_WAIT: Duration = Duration::from_secs(600);

/// A rate limit the server says was reached.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RateLimit {
    /// What is counted: `resolvers`, `api`, ...
    pub resource: String,
    /// Requests left in the window.
    pub remaining: u64,
    /// Seconds until the window resets.
    pub reset_seconds: u64,
    /// Requests allowed per window, if the policy says.
    pub quota: Option<u64>,
    /// The window, in seconds, if the policy says.
    pub window_seconds: Option<u64>,
}

impl RateLimit {
    /// Reads `RateLimit: "resolvers";r=0;t=55` and `RateLimit-Policy: "fixed
    /// window";"resolvers";q=3000;w=300`; `None` without a usable `RateLimit`.
    pub(crate) fn parse(limit: &str, policy: Option<&str>) -> Option<RateLimit> {
        let (resource, rest) = quoted(limit)?;
        let remaining = parameter(rest, "r")?;
        let reset_seconds = parameter(rest, "t")?;
        let policy = policy.and_then(|text| Some((parameter(text, "q")?, parameter(text, "w")?)));
        Some(RateLimit {
            resource: resource.to_owned(),
            remaining,
            reset_seconds,
            quota: policy.map(|(q, _)| q),
            window_seconds: policy.map(|(_, w)| w),
        })
    }

    /// How long to wait before asking again: until the window resets, plus a second (as the
    /// reference client), within [`MAX_WAIT`]; `None` if requests are left (not this limit).
    pub(crate) fn wait(&self) -> Option<Duration> {
        (self.remaining == 0).then(|| Duration::from_secs(self.reset_seconds + 1).min(MAX_WAIT))
    }
}

/// The first `"..."` of `text`, and what follows it.
fn quoted(text: &str) -> Option<(&str, &str)> {
    let open = text.find('"')?;
    let close = open + 1 + text[open + 1..].find('"')?;
    Some((&text[open + 1..close], &text[close + 1..]))
}

/// The number after `name =` among `;`-separated parameters.
fn parameter(text: &str, name: &str) -> Option<u64> {
    text.split(';').find_map(|part| {
        let (key, value) = part.split_once('=')?;
        (key.trim() == name).then(|| value.trim().parse().ok())?
    })
}

/// When requests may go again, shared by every clone of a client: paused until a rate
/// limit's window resets, then at most the window's quota of resolves until an answer says
/// more (so that the workers waiting for the reset do not all go at once and meet a 429
/// again).
#[derive(Debug, Clone, Default)]
pub(super) struct Pause(Arc<Mutex<Gate>>);

#[derive(Debug, Default)]
struct Gate {
    /// No request before this.
    until: Option<Instant>,
    /// Resolves that may still start in the current window, when known.
    allowance: Option<u64>,
    /// When the allowance ran out: a window that does not end in time is no longer trusted.
    spent_at: Option<Instant>,
}

/// How often a request whose window's allowance is spent looks again.
const SPENT_POLL: Duration = Duration::from_millis(20);
/// How long a spent allowance holds requests back without a new pause.
const SPENT_FOR_AT_MOST: Duration = Duration::from_secs(10);

impl Pause {
    fn gate(&self) -> std::sync::MutexGuard<'_, Gate> {
        self.0.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Waits until a request may go: the pause (if any) is over, and, for a resolve, the
    /// window's allowance is not spent.
    pub(super) fn wait(&self, resolve: bool) {
        loop {
            let sleep = {
                let mut gate = self.gate();
                let now = Instant::now();
                match gate.until {
                    Some(until) if until > now => until - now,
                    _ if !resolve => return,
                    _ => match gate.allowance {
                        Some(0)
                            if gate
                                .spent_at
                                .is_some_and(|at| at.elapsed() < SPENT_FOR_AT_MOST) =>
                        {
                            SPENT_POLL
                        }
                        Some(0) => {
                            gate.allowance = None;
                            return;
                        }
                        Some(left) => {
                            gate.allowance = Some(left - 1);
                            if left == 1 {
                                gate.spent_at = Some(now);
                            }
                            return;
                        }
                        None => return,
                    },
                }
            };
            thread::sleep(sleep);
        }
    }

    /// Pauses every request for `wait` from now, after which `quota` resolves may go (when
    /// known); true if that pauses longer than before (the first worker to hear of a window
    /// says so, the others do not repeat it).
    pub(super) fn extend(&self, wait: Duration, quota: Option<u64>) -> bool {
        let until = Instant::now() + wait;
        let mut gate = self.gate();
        // Workers that hit the same window compute deadlines a moment apart.
        let longer = gate
            .until
            .is_none_or(|now| until > now + Duration::from_secs(1));
        if gate.until.is_none_or(|now| until > now) {
            gate.until = Some(until);
            gate.allowance = quota;
            gate.spent_at = None;
        }
        longer
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn headers_read_like_the_reference_clients() {
        let limit = RateLimit::parse(
            "\"resolvers\";r=0;t=55",
            Some("\"fixed window\";\"resolvers\";q=3000;w=300"),
        )
        .unwrap();
        assert_eq!(
            limit,
            RateLimit {
                resource: "resolvers".into(),
                remaining: 0,
                reset_seconds: 55,
                quota: Some(3000),
                window_seconds: Some(300),
            }
        );
        assert_eq!(limit.wait(), Some(Duration::from_secs(56)));
        let spaced = RateLimit::parse("\"api\" ; r = 3 ; t = 9", None).unwrap();
        assert_eq!((spaced.remaining, spaced.reset_seconds), (3, 9));
        assert_eq!(spaced.quota, None);
        assert_eq!(spaced.wait(), None);
        let long = RateLimit::parse("\"api\";r=0;t=86400", None).unwrap();
        assert_eq!(long.wait(), Some(MAX_WAIT));
        for bad in ["", "resolvers;r=0;t=5", "\"x\";r=0", "\"x\";r=a;t=1"] {
            assert_eq!(RateLimit::parse(bad, None), None, "{bad}");
        }
    }

    #[test]
    fn a_pause_holds_every_clone_and_is_told_once() {
        let pause = Pause::default();
        let other = pause.clone();
        assert!(pause.extend(Duration::from_millis(50), Some(2)));
        assert!(
            !other.extend(Duration::from_millis(50), Some(2)),
            "the same window"
        );
        let started = Instant::now();
        other.wait(true);
        assert!(started.elapsed() >= Duration::from_millis(40));
        // Two resolves may go in the new window; a third waits for news of the next one.
        pause.wait(true);
        assert_eq!(pause.gate().allowance, Some(0));
        pause.wait(false);
        thread::scope(|scope| {
            let waiting = scope.spawn(|| pause.wait(true));
            thread::sleep(Duration::from_millis(60));
            assert!(!waiting.is_finished(), "the allowance is spent");
            other.extend(Duration::from_millis(1), None);
            waiting.join().unwrap();
        });
        assert_eq!(pause.gate().allowance, None);
    }
}
