//! One keep-alive HTTP/1.1 connection to a broker (hyper's client
//! connection, no pool): the load generator owns one per worker, so it
//! spends as little of the shared cores as it can.

use std::net::SocketAddr;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::client::conn::http1::SendRequest;
use hyper::header::{CONTENT_TYPE, HOST, HeaderName, HeaderValue};
use hyper::{Method, Request, StatusCode};
use hyper_util::rt::TokioIo;
use tokio::net::TcpStream;

/// A request that takes longer than this counts as an error.
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(5);

/// A connection that reconnects after errors.
pub struct Conn {
    addr: SocketAddr,
    host: HeaderValue,
    sender: Option<SendRequest<Full<Bytes>>>,
}

impl Conn {
    /// A connection to `addr`, opened on first use.
    pub fn new(addr: SocketAddr) -> Self {
        let host = HeaderValue::from_str(&addr.to_string()).expect("socket address is ASCII");
        Self { addr, host, sender: None }
    }

    async fn sender(&mut self) -> anyhow::Result<&mut SendRequest<Full<Bytes>>> {
        if self.sender.as_ref().is_none_or(|s| s.is_closed()) {
            let stream = TcpStream::connect(self.addr).await?;
            stream.set_nodelay(true)?;
            let (sender, connection) =
                hyper::client::conn::http1::handshake(TokioIo::new(stream)).await?;
            tokio::spawn(async move {
                let _ = connection.await;
            });
            self.sender = Some(sender);
        }
        let sender = self.sender.as_mut().expect("just connected");
        sender.ready().await?;
        Ok(sender)
    }

    /// Sends a request and reads the whole answer; on any failure the
    /// connection is dropped and the next request reconnects.
    pub async fn send(
        &mut self,
        method: Method,
        path: &str,
        header: Option<(&HeaderName, HeaderValue)>,
        body: Bytes,
    ) -> anyhow::Result<(StatusCode, Bytes)> {
        let result =
            tokio::time::timeout(REQUEST_TIMEOUT, self.exchange(method, path, header, body))
                .await
                .unwrap_or_else(|_| Err(anyhow::anyhow!("timed out")));
        if result.is_err() {
            self.sender = None;
        }
        result
    }

    async fn exchange(
        &mut self,
        method: Method,
        path: &str,
        header: Option<(&HeaderName, HeaderValue)>,
        body: Bytes,
    ) -> anyhow::Result<(StatusCode, Bytes)> {
        let mut request = Request::builder()
            .method(method)
            .uri(path)
            .header(HOST, self.host.clone())
            .header(CONTENT_TYPE, HeaderValue::from_static("application/json"));
        if let Some((name, value)) = header {
            request = request.header(name, value);
        }
        let request = request.body(Full::new(body))?;
        let response = self.sender().await?.send_request(request).await?;
        let status = response.status();
        let body = response.into_body().collect().await?.to_bytes();
        Ok((status, body))
    }

    /// `POST path` with a JSON body.
    pub async fn post(&mut self, path: &str, body: Bytes) -> anyhow::Result<StatusCode> {
        Ok(self.send(Method::POST, path, None, body).await?.0)
    }
}

/// Waits until something accepts connections at `addr`.
pub async fn wait_listening(addr: SocketAddr, within: Duration) -> anyhow::Result<()> {
    let deadline = tokio::time::Instant::now() + within;
    while TcpStream::connect(addr).await.is_err() {
        anyhow::ensure!(tokio::time::Instant::now() < deadline, "nothing listens at {addr}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    Ok(())
}
