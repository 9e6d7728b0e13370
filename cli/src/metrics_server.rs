//! `temper train --metrics-addr HOST:PORT`: a Prometheus scrape endpoint for the live run.
//!
//! `GET /metrics` serves every metric the trainer publishes (see
//! `temper_learner::train::telemetry`) in Prometheus' text format. Callers authenticate with a
//! bearer token, read from `TEMPER_METRICS_TOKEN` (Prometheus: `authorization: { credentials:
//! <token> }` in the scrape config); request heads are bounded in size and time, bodies are never
//! read. The server runs on its own thread and runtime, so the synchronous trainer never waits
//! on a scrape.

use std::convert::Infallible;
use std::net::{SocketAddr, TcpListener};
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result, bail};
use http_body_util::Full;
use hyper::body::{Bytes, Incoming};
use hyper::header::{AUTHORIZATION, CONTENT_TYPE, WWW_AUTHENTICATE};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::{TokioIo, TokioTimer};
use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle};

/// The environment variable holding the scrape token.
pub const TOKEN_ENV: &str = "TEMPER_METRICS_TOKEN";

/// Largest request head accepted (hyper's minimum buffer).
const MAX_HEAD_BYTES: usize = 8192;
/// A client that has not sent its request head by then is dropped.
const HEAD_TIMEOUT: Duration = Duration::from_secs(5);

/// Installs the global Prometheus recorder and serves it on `addr`; returns the bound address
/// (useful with port 0).
pub fn start(runtime: &tokio::runtime::Handle, addr: &str) -> Result<SocketAddr> {
    let token = std::env::var(TOKEN_ENV).ok().filter(|t| !t.is_empty());
    let Some(token) = token else {
        bail!(
            "--metrics-addr needs a scrape token: set {TOKEN_ENV} to the bearer token Prometheus \
             sends (its scrape config's `authorization: {{credentials: ...}}`)"
        );
    };
    let listener =
        TcpListener::bind(addr).with_context(|| format!("binding --metrics-addr {addr}"))?;
    let recorder = PrometheusBuilder::new().build_recorder();
    let handle = recorder.handle();
    metrics::set_global_recorder(recorder).context("installing the metrics recorder")?;
    spawn(runtime, listener, token, handle)
}

/// Serves `handle` on `listener` as a task of `runtime` (the binary's I/O runtime); returns the
/// bound address.
pub fn spawn(
    runtime: &tokio::runtime::Handle,
    listener: TcpListener,
    token: String,
    handle: PrometheusHandle,
) -> Result<SocketAddr> {
    let addr = listener.local_addr()?;
    listener.set_nonblocking(true)?;
    let expected = Arc::new(format!("Bearer {token}"));
    // `from_std` registers the socket with the runtime's reactor: do it inside the runtime.
    let listener = {
        let _entered = runtime.enter();
        tokio::net::TcpListener::from_std(listener).context("listening for metrics scrapes")?
    };
    runtime.spawn(async move {
        loop {
            let (stream, peer) = match listener.accept().await {
                Ok(accepted) => accepted,
                Err(error) => {
                    tracing::warn!(%error, "metrics server accept failed");
                    continue;
                }
            };
            let handle = handle.clone();
            let expected = expected.clone();
            tokio::spawn(async move {
                let service = service_fn(move |request| {
                    let response = respond(&request, &expected, &handle);
                    async move { Ok::<_, Infallible>(response) }
                });
                let served = http1::Builder::new()
                    .max_buf_size(MAX_HEAD_BYTES)
                    .timer(TokioTimer::new())
                    .header_read_timeout(HEAD_TIMEOUT)
                    .serve_connection(TokioIo::new(stream), service)
                    .await;
                if let Err(error) = served {
                    tracing::debug!(%peer, %error, "metrics connection ended with an error");
                }
            });
        }
    });
    Ok(addr)
}

fn respond(
    request: &Request<Incoming>,
    expected: &str,
    handle: &PrometheusHandle,
) -> Response<Full<Bytes>> {
    let reply = |status: StatusCode, body: String| {
        let mut response = Response::new(Full::new(Bytes::from(body)));
        *response.status_mut() = status;
        response
    };
    if request.method() != Method::GET || request.uri().path() != "/metrics" {
        return reply(
            StatusCode::NOT_FOUND,
            "only GET /metrics is served\n".into(),
        );
    }
    let presented = request
        .headers()
        .get(AUTHORIZATION)
        .map(|v| v.as_bytes())
        .unwrap_or_default();
    if !constant_time_eq(presented, expected.as_bytes()) {
        let mut response = reply(
            StatusCode::UNAUTHORIZED,
            format!("missing or wrong bearer token (the one in {TOKEN_ENV})\n"),
        );
        response
            .headers_mut()
            .insert(WWW_AUTHENTICATE, "Bearer".parse().expect("static header"));
        return response;
    }
    let mut response = reply(StatusCode::OK, handle.render());
    response.headers_mut().insert(
        CONTENT_TYPE,
        "text/plain; version=0.0.4".parse().expect("static header"),
    );
    response
}

/// Compares without an early exit, so response timing does not leak the token's prefix.
fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::{Read, Write};
    use std::net::TcpStream;

    fn get(addr: SocketAddr, head: &str) -> String {
        let mut stream = TcpStream::connect(addr).unwrap();
        stream
            .write_all(format!("{head}Host: test\r\nConnection: close\r\n\r\n").as_bytes())
            .unwrap();
        let mut response = String::new();
        stream.read_to_string(&mut response).unwrap();
        response
    }

    fn io_runtime() -> tokio::runtime::Runtime {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .unwrap()
    }

    #[test]
    fn serves_metrics_to_the_token_holder_only() {
        let recorder = PrometheusBuilder::new().build_recorder();
        let handle = recorder.handle();
        metrics::with_local_recorder(&recorder, || {
            metrics::gauge!("temper_reward_mean", "stage" => "rl").set(0.75);
        });
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let runtime = io_runtime();
        let addr = spawn(runtime.handle(), listener, "s3cret".into(), handle).unwrap();

        let ok = get(
            addr,
            "GET /metrics HTTP/1.1\r\nAuthorization: Bearer s3cret\r\n",
        );
        assert!(ok.starts_with("HTTP/1.1 200"), "{ok}");
        assert!(ok.contains("temper_reward_mean{stage=\"rl\"} 0.75"), "{ok}");

        let missing = get(addr, "GET /metrics HTTP/1.1\r\n");
        assert!(missing.starts_with("HTTP/1.1 401"), "{missing}");
        assert!(missing.contains("TEMPER_METRICS_TOKEN"), "{missing}");
        let wrong = get(
            addr,
            "GET /metrics HTTP/1.1\r\nAuthorization: Bearer s3cre7\r\n",
        );
        assert!(wrong.starts_with("HTTP/1.1 401"), "{wrong}");

        let elsewhere = get(
            addr,
            "GET /admin HTTP/1.1\r\nAuthorization: Bearer s3cret\r\n",
        );
        assert!(elsewhere.starts_with("HTTP/1.1 404"), "{elsewhere}");
    }

    #[test]
    fn oversized_request_heads_are_refused() {
        let recorder = PrometheusBuilder::new().build_recorder();
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let runtime = io_runtime();
        let addr = spawn(runtime.handle(), listener, "t".into(), recorder.handle()).unwrap();
        let padding = "x".repeat(64 * 1024);
        let response = get(
            addr,
            &format!("GET /metrics HTTP/1.1\r\nAuthorization: Bearer t\r\nX-Pad: {padding}\r\n"),
        );
        assert!(response.starts_with("HTTP/1.1 431"), "{response:.80}");
    }
}
