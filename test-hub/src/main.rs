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
                [--token T]... [--file-size REPO_ID/PATH=BYTES]... [--reject-invalid-tokens]";

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
        if flag == "--reject-invalid-tokens" {
            options.reject_invalid_tokens = true;
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
