//! `trends-api healthcheck [PORT | HOST:PORT]`: a container healthcheck without curl in the
//! image. It sends `GET /healthz` to the API on this machine and exits 0 on a `200`, 1 on
//! anything else (no answer within [`TIMEOUT`], another status, a configuration it cannot
//! read), with the reason on stderr.
//!
//! Without an argument it asks the port of `http.addr` (read from the environment like the
//! server does, `TRENDS__HTTP__ADDR`), on loopback when the server listens on every address.
//! With one it asks that port on 127.0.0.1, or that address: the other two services serve
//! `/healthz` on their metrics port, so the same image checks them too
//! (`trends-api healthcheck 9100` for the aggregator, `9101` for the producer).
//!
//! Plain HTTP/1.1 over a std TCP stream: no runtime, no Kafka, nothing but the answer's status
//! line is read.

use std::io::{Read as _, Write as _};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, TcpStream};
use std::process::ExitCode;
use std::time::Duration;

use anyhow::{Context as _, bail};
use trends_common::config::Load as _;

use crate::settings::Settings;

/// How long the connection, the request and the answer's status line may each take.
pub const TIMEOUT: Duration = Duration::from_secs(2);

/// The path asked.
pub const PATH: &str = "/healthz";

/// Runs the subcommand with the arguments after `healthcheck`; the process's exit code.
pub fn main(args: &[String]) -> ExitCode {
    let outcome = target(args).and_then(|addr| check(addr, PATH, TIMEOUT));
    match outcome {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("healthcheck: {e:#}");
            ExitCode::FAILURE
        }
    }
}

/// The address to ask: from the argument if there is one, else from the settings.
fn target(args: &[String]) -> anyhow::Result<SocketAddr> {
    match args {
        [] => {
            let settings = Settings::load().context("cannot read the settings")?;
            Ok(local(settings.http.addr))
        }
        [arg] => parse_target(arg),
        _ => bail!("usage: trends-api healthcheck [PORT | HOST:PORT] (got {args:?})"),
    }
}

/// A port (on 127.0.0.1) or a socket address; an unspecified address means loopback.
pub fn parse_target(arg: &str) -> anyhow::Result<SocketAddr> {
    if let Ok(port) = arg.parse::<u16>() {
        return Ok(SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), port));
    }
    let addr: SocketAddr = arg.parse().with_context(|| {
        format!("{arg:?} is neither a port nor a socket address such as 127.0.0.1:8080")
    })?;
    Ok(local(addr))
}

/// Where a client on this machine reaches a server listening on `listen`: the same address,
/// but loopback for an unspecified one (`0.0.0.0`, `[::]`).
pub fn local(listen: SocketAddr) -> SocketAddr {
    let ip = match listen.ip() {
        IpAddr::V4(ip) if ip.is_unspecified() => IpAddr::V4(Ipv4Addr::LOCALHOST),
        IpAddr::V6(ip) if ip.is_unspecified() => IpAddr::V6(Ipv6Addr::LOCALHOST),
        ip => ip,
    };
    SocketAddr::new(ip, listen.port())
}

/// Sends `GET path` to `addr`; `Ok` if the answer's status is 200. Each step (connect, write,
/// every read) may take up to `timeout`.
pub fn check(addr: SocketAddr, path: &str, timeout: Duration) -> anyhow::Result<()> {
    let mut stream = TcpStream::connect_timeout(&addr, timeout)
        .with_context(|| format!("cannot connect to {addr}"))?;
    stream.set_read_timeout(Some(timeout))?;
    stream.set_write_timeout(Some(timeout))?;
    let request = format!(
        "GET {path} HTTP/1.1\r\nHost: {addr}\r\nUser-Agent: trends-api-healthcheck\r\n\
         Connection: close\r\n\r\n"
    );
    stream
        .write_all(request.as_bytes())
        .with_context(|| format!("cannot send the request to {addr}"))?;
    let line = status_line(&mut stream).with_context(|| format!("no answer from {addr}{path}"))?;
    match status(&line) {
        Some(200) => Ok(()),
        Some(code) => bail!("{addr}{path} answered {code}"),
        None => bail!("{addr}{path} answered {line:?}, not HTTP"),
    }
}

/// The answer's first line (at most 1 KiB of it), without its line end.
fn status_line(stream: &mut TcpStream) -> anyhow::Result<String> {
    let mut head = Vec::with_capacity(128);
    let mut buf = [0u8; 256];
    while !head.contains(&b'\n') && head.len() < 1024 {
        let n = stream.read(&mut buf)?;
        if n == 0 {
            break;
        }
        head.extend_from_slice(&buf[..n]);
    }
    let end = head.iter().position(|&b| b == b'\n').unwrap_or(head.len());
    if end == 0 {
        bail!("the connection closed without an answer");
    }
    Ok(String::from_utf8_lossy(&head[..end])
        .trim_end_matches('\r')
        .to_owned())
}

/// The status code of an HTTP/1.x status line (`HTTP/1.1 200 OK`).
fn status(line: &str) -> Option<u16> {
    let mut parts = line.split(' ');
    let version = parts.next()?;
    if !version.starts_with("HTTP/1.") {
        return None;
    }
    parts.next()?.parse().ok()
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::sync::atomic::AtomicBool;

    use tokio::net::TcpListener;
    use tokio::sync::watch;
    use tokio_util::sync::CancellationToken;

    use super::*;
    use crate::app::HttpOptions;
    use crate::prepared::Prepared;
    use crate::server::serve_api;
    use crate::state::AppState;

    #[test]
    fn a_port_or_an_address_and_every_address_means_loopback() {
        let v4 = |s: &str| s.parse::<SocketAddr>().expect("address");
        assert_eq!(parse_target("8080").expect("port"), v4("127.0.0.1:8080"));
        assert_eq!(
            parse_target("0.0.0.0:9100").expect("any"),
            v4("127.0.0.1:9100")
        );
        assert_eq!(parse_target("[::]:8080").expect("any v6"), v4("[::1]:8080"));
        assert_eq!(
            parse_target("192.0.2.3:81").expect("addr"),
            v4("192.0.2.3:81")
        );
        assert_eq!(local(v4("0.0.0.0:8080")), v4("127.0.0.1:8080"));
        assert_eq!(local(v4("192.0.2.7:8080")), v4("192.0.2.7:8080"));
        let error = parse_target("localhost").expect_err("not an address");
        assert!(error.to_string().contains("\"localhost\""), "{error}");
        let error = target(&["1".to_string(), "2".to_string()]).expect_err("two arguments");
        assert!(error.to_string().contains("usage"), "{error}");
    }

    #[test]
    fn status_lines() {
        assert_eq!(status("HTTP/1.1 200 OK"), Some(200));
        assert_eq!(status("HTTP/1.0 503 Service Unavailable"), Some(503));
        assert_eq!(status("SSH-2.0-OpenSSH_9.2"), None);
        assert_eq!(status("HTTP/1.1"), None);
    }

    /// The production server on a loopback port: `/healthz` passes; `/readyz`, 503 before the
    /// counts topic was read, fails naming the status; once the server stopped, the check
    /// fails to connect.
    #[test]
    fn checks_the_real_server() {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .expect("runtime");
        let listener = runtime
            .block_on(TcpListener::bind("127.0.0.1:0"))
            .expect("bind");
        let addr = listener.local_addr().expect("local addr");
        let (_snapshots, snapshot) = watch::channel(Arc::new(Prepared::default()));
        let state = AppState::new(snapshot, Arc::new(AtomicBool::new(false)));
        let shutdown = CancellationToken::new();
        let stop = shutdown.clone();
        let server = runtime.spawn(async move {
            serve_api(listener, None, state, &HttpOptions::default(), stop).await;
        });

        check(addr, PATH, TIMEOUT).expect("/healthz answers 200");
        let error = check(addr, "/readyz", TIMEOUT).expect_err("not ready");
        assert!(
            error.to_string().ends_with("/readyz answered 503"),
            "{error}"
        );

        shutdown.cancel();
        runtime.block_on(server).expect("server stopped");
        let error = check(addr, PATH, TIMEOUT).expect_err("nothing listens");
        assert!(
            error
                .to_string()
                .contains(&format!("cannot connect to {addr}")),
            "{error:#}"
        );
    }
}
