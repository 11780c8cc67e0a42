//! How to reach the Hub: the endpoint, the token and the timing, from the environment.

use std::fmt;
use std::time::Duration;

use crate::env::Env;

/// How to reach the Hub. Built from the environment by [`HubConfig::from_env`], as the
/// reference client reads it.
#[derive(Clone)]
pub(crate) struct HubConfig {
    /// `HF_ENDPOINT` without its trailing `/`; default `https://huggingface.co`.
    pub endpoint: String,
    /// The token sent to the endpoint's origin, if any.
    pub token: Option<String>,
    /// The first retry waits this long, doubling up to 8 times it (default 1 s).
    pub backoff: Duration,
    /// Longest silence while reading a response (`HF_HUB_DOWNLOAD_TIMEOUT`, default 10 s).
    pub read_timeout: Duration,
}

impl fmt::Debug for HubConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Never print the token.
        f.debug_struct("HubConfig")
            .field("endpoint", &self.endpoint)
            .field("token", &self.token.as_ref().map(|_| "<redacted>"))
            .field("backoff", &self.backoff)
            .field("read_timeout", &self.read_timeout)
            .finish()
    }
}

impl HubConfig {
    /// The endpoint, token and timing the environment gives.
    pub(crate) fn from_env(env: &Env) -> HubConfig {
        HubConfig {
            endpoint: env.endpoint(),
            token: env.token(),
            backoff: env.backoff(),
            read_timeout: env.download_timeout(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_token_is_never_printed() {
        let env = Env::from_fn(|name| match name {
            "HF_TOKEN" => Some("secret".to_owned()),
            "HF_ENDPOINT" => Some("http://x:1/".to_owned()),
            _ => None,
        });
        let config = HubConfig::from_env(&env);
        assert_eq!(config.endpoint, "http://x:1");
        assert_eq!(config.token.as_deref(), Some("secret"));
        assert!(!format!("{config:?}").contains("secret"));
    }
}
