//! `flowtel healthcheck`: probe a running flowtel's `/healthz` and exit 0 when it answers
//! 2xx. It exists for container HEALTHCHECKs in images without curl or wget (distroless).
//! A minimal HTTP/1.0 GET over std's TcpStream is all that needs.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream, ToSocketAddrs};
use std::time::Duration;

use anyhow::{Context, bail};
use clap::Args;

#[derive(Debug, Clone, Args)]
pub struct HealthcheckArgs {
    /// URL to probe (plain http); default: `/healthz` on the default `prometheus_listen` port.
    #[arg(long, default_value_t = default_url())]
    pub url: String,
    /// Seconds to wait for the connection and the answer.
    #[arg(long, value_name = "SECS", default_value_t = 3)]
    pub timeout: u64,
}

/// `/healthz` on loopback at the port of the default `prometheus_listen`.
fn default_url() -> String {
    let port = flowtel::config::Config::default().prometheus_listen.port();
    format!("http://127.0.0.1:{port}/healthz")
}

/// `http://host:port/path` -> (host:port, path).
fn split_url(url: &str) -> anyhow::Result<(&str, &str)> {
    let rest = url
        .strip_prefix("http://")
        .with_context(|| format!("--url {url}: only http:// is supported"))?;
    Ok(match rest.find('/') {
        Some(i) => (&rest[..i], &rest[i..]),
        None => (rest, "/"),
    })
}

/// The status code of an HTTP response's first line (`HTTP/1.1 200 OK`).
fn status(head: &str) -> Option<u16> {
    let line = head.lines().next()?;
    let mut parts = line.split_whitespace();
    parts.next().filter(|v| v.starts_with("HTTP/"))?;
    parts.next()?.parse().ok()
}

pub fn run(args: &HealthcheckArgs) -> anyhow::Result<()> {
    let (authority, path) = split_url(&args.url)?;
    let timeout = Duration::from_secs(args.timeout.max(1));
    let addr: SocketAddr = authority
        .to_socket_addrs()
        .with_context(|| format!("cannot resolve {authority}"))?
        .next()
        .with_context(|| format!("{authority} resolves to no address"))?;
    let mut s = TcpStream::connect_timeout(&addr, timeout)
        .with_context(|| format!("cannot connect to {addr}"))?;
    s.set_read_timeout(Some(timeout))?;
    s.set_write_timeout(Some(timeout))?;
    let request = format!(
        "GET {path} HTTP/1.0\r\nHost: {authority}\r\nUser-Agent: flowtel-healthcheck\r\n\r\n"
    );
    s.write_all(request.as_bytes())?;
    let mut head = Vec::with_capacity(256);
    s.take(4096).read_to_end(&mut head)?;
    let head = String::from_utf8_lossy(&head);
    match status(&head) {
        Some(code) if (200..300).contains(&code) => Ok(()),
        Some(code) => bail!("{} answered HTTP {code}", args.url),
        None => bail!("{} did not answer HTTP", args.url),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_and_status_lines_parse() {
        assert_eq!(
            split_url("http://127.0.0.1:9464/healthz").unwrap(),
            ("127.0.0.1:9464", "/healthz")
        );
        assert_eq!(split_url("http://[::1]:9464").unwrap(), ("[::1]:9464", "/"));
        assert!(split_url("https://x:1/").is_err());
        assert_eq!(status("HTTP/1.1 200 OK\r\n\r\nok"), Some(200));
        assert_eq!(status("HTTP/1.0 503 Service Unavailable\r\n"), Some(503));
        assert_eq!(status("SSH-2.0-OpenSSH\r\n"), None);
        assert_eq!(status(""), None);
    }
}
