//! Standalone test hub for benchmarks and for running the Python client against the fixtures.
//!
//! Prints `endpoint=http://127.0.0.1:PORT` (and `cdn=...`) then serves until killed.
//! `GET /_test/requests` on the endpoint returns the request log as JSON; `DELETE` clears it.

use std::io::Write;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::{Context, Result, bail};
use test_hub::{Options, TestHub};

const USAGE: &str = "usage: test-hub [--fixtures DIR] [--port N] [--cdn-port N] [--page-size N]
                [--latency-ms N] [--bandwidth BYTES_PER_SEC] [--data-dir DIR]
                [--token T]... [--file-size REPO_ID/PATH=BYTES]... [--reject-invalid-tokens]
                [--xet] [--sign-ranges] [--signed-url-ttl SECONDS] [--max-unranged-bytes N]
                [--resolve-rate-limit QUOTA/SECONDS] [--rate-limit-retry-after]";

fn main() -> Result<()> {
    let options = parse_args(std::env::args().skip(1))?;
    let hub = TestHub::start(options)?;
    // One write: a script that reads only the first line and closes the pipe must not make a
    // second write fail. Serving goes on even if nobody reads stdout any more.
    let banner = format!("endpoint={}\ncdn={}\n", hub.endpoint(), hub.cdn_origin());
    let mut stdout = std::io::stdout().lock();
    let _ = stdout
        .write_all(banner.as_bytes())
        .and_then(|()| stdout.flush());
    drop(stdout);
    loop {
        std::thread::park();
    }
}

fn parse_args(mut args: impl Iterator<Item = String>) -> Result<Options> {
    let mut options = Options::default();
    let mut tokens = Vec::new();
    while let Some(flag) = args.next() {
        if flag == "--help" || flag == "-h" {
            println!("{USAGE}");
            std::process::exit(0);
        }
        let switch = match flag.as_str() {
            "--reject-invalid-tokens" => Some(&mut options.reject_invalid_tokens),
            "--xet" => Some(&mut options.xet),
            "--sign-ranges" => Some(&mut options.sign_ranges),
            "--rate-limit-retry-after" => Some(&mut options.rate_limit_retry_after),
            _ => None,
        };
        if let Some(switch) = switch {
            *switch = true;
            continue;
        }
        let Some(value) = args.next() else {
            bail!("{flag} needs a value\n{USAGE}");
        };
        let number = || {
            value
                .parse::<u64>()
                .with_context(|| format!("{flag} expects a number, not {value:?}"))
        };
        match flag.as_str() {
            "--fixtures" => options.fixtures = PathBuf::from(&value),
            "--port" => options.port = number()?.try_into()?,
            "--cdn-port" => options.cdn_port = number()?.try_into()?,
            "--page-size" => options.page_size = number()?.try_into()?,
            "--latency-ms" => options.latency = Duration::from_millis(number()?),
            "--bandwidth" => options.bandwidth = Some(number()?),
            "--data-dir" => options.data_dir = Some(PathBuf::from(&value)),
            "--signed-url-ttl" => options.signed_url_ttl = Duration::from_secs(number()?),
            "--max-unranged-bytes" => options.max_unranged_bytes = Some(number()?),
            "--resolve-rate-limit" => {
                options.resolve_rate_limit = Some(
                    parse_rate_limit(&value)
                        .with_context(|| format!("--resolve-rate-limit expects QUOTA/SECONDS (e.g. 3000/300 or 4/1.5), not {value:?}"))?,
                );
            }
            "--token" => tokens.push(value.clone()),
            "--file-size" => {
                let Some((key, size)) = value.split_once('=') else {
                    bail!("--file-size expects REPO_ID/PATH=BYTES, not {value:?}");
                };
                let size = size
                    .parse()
                    .with_context(|| format!("bad size in {value:?}"))?;
                options.file_sizes.insert(key.to_string(), size);
            }
            _ => bail!("unknown argument {flag:?}\n{USAGE}"),
        }
    }
    if !tokens.is_empty() {
        options.valid_tokens = tokens;
    }
    Ok(options)
}

/// `QUOTA/SECONDS`, the window possibly shorter than a second (for tests).
fn parse_rate_limit(value: &str) -> Result<(u64, Duration)> {
    let (quota, seconds) = value.split_once('/').context("no /")?;
    let window = Duration::try_from_secs_f64(seconds.parse()?)?;
    if window.is_zero() {
        bail!("the window must be longer than zero");
    }
    Ok((quota.parse()?, window))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(args: &[&str]) -> Result<Options> {
        parse_args(args.iter().map(|a| a.to_string()))
    }

    #[test]
    fn flags_for_todays_hub() {
        let options = parse(&[
            "--xet",
            "--sign-ranges",
            "--signed-url-ttl",
            "60",
            "--max-unranged-bytes",
            "1000",
            "--resolve-rate-limit",
            "4/1.5",
            "--rate-limit-retry-after",
        ])
        .unwrap();
        assert!(options.xet && options.sign_ranges && options.rate_limit_retry_after);
        assert_eq!(options.signed_url_ttl, Duration::from_secs(60));
        assert_eq!(options.max_unranged_bytes, Some(1000));
        assert_eq!(
            options.resolve_rate_limit,
            Some((4, Duration::from_millis(1500)))
        );

        let defaults = parse(&[]).unwrap();
        assert!(!defaults.xet && !defaults.sign_ranges && !defaults.rate_limit_retry_after);
        assert_eq!(defaults.signed_url_ttl, Duration::from_secs(3600));
        assert_eq!(defaults.max_unranged_bytes, None);
        assert_eq!(defaults.resolve_rate_limit, None);

        for bad in ["4", "4/0", "4/-1", "x/300", "4/soon"] {
            let error = parse(&["--resolve-rate-limit", bad]).unwrap_err();
            assert!(
                format!("{error:#}").contains("expects QUOTA/SECONDS"),
                "{bad}: {error:#}"
            );
        }
    }
}
