//! HTTP/1.1 by hand over a real TCP connection, so that a request can lie: send bytes, read one
//! response (skipping `100 Continue`), and say how the exchange ended.

use std::net::{IpAddr, SocketAddr};
use std::pin::pin;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpSocket;

/// One answer, as read off the wire.
#[derive(Debug, Clone)]
pub struct Answer {
    pub status: u16,
    /// Header names in lowercase, with their values.
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Answer {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }
}

/// How one exchange ended.
#[derive(Debug)]
pub enum Ended {
    Answered(Answer),
    /// The server closed (or reset) the connection before a whole response.
    Closed {
        read: usize,
        error: Option<String>,
    },
    /// No whole response within the deadline.
    TimedOut,
    /// The connection could not be made or the request not written.
    NotSent(String),
}

impl std::fmt::Display for Ended {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Answered(answer) => write!(
                f,
                "{} {}",
                answer.status,
                String::from_utf8_lossy(&answer.body)
            ),
            Self::Closed { read, error } => {
                write!(f, "closed after {read} bytes of answer ({error:?})")
            }
            Self::TimedOut => f.write_str("no whole answer in time"),
            Self::NotSent(reason) => write!(f, "not sent: {reason}"),
        }
    }
}

/// Sends `wire` from `source` to `to`; half-closes after it when `half_close`; waits at most
/// `patience` for one response.
pub async fn exchange(
    source: [u8; 4],
    to: SocketAddr,
    wire: &[u8],
    half_close: bool,
    patience: Duration,
) -> Ended {
    let socket = match TcpSocket::new_v4() {
        Ok(socket) => socket,
        Err(err) => return Ended::NotSent(err.to_string()),
    };
    if let Err(err) = socket.bind(SocketAddr::new(IpAddr::from(source), 0)) {
        return Ended::NotSent(format!("bind {source:?}: {err}"));
    }
    let mut stream = match socket.connect(to).await {
        Ok(stream) => stream,
        Err(err) => return Ended::NotSent(format!("connect: {err}")),
    };
    let (mut reader, mut writer) = stream.split();
    let mut raw = Vec::new();
    // The answer to a HEAD request has a head only, whatever its Content-Length says.
    let head_only = wire.starts_with(b"HEAD ");
    let read = async {
        let mut buffer = vec![0u8; 64 * 1024];
        loop {
            if let Some(answer) = parse(&mut raw, head_only) {
                return Ended::Answered(answer);
            }
            match reader.read(&mut buffer).await {
                Ok(0) => {
                    return Ended::Closed {
                        read: raw.len(),
                        error: None,
                    }
                }
                Ok(n) => raw.extend_from_slice(&buffer[..n]),
                Err(err) => {
                    return Ended::Closed {
                        read: raw.len(),
                        error: Some(err.to_string()),
                    }
                }
            }
        }
    };
    // Writing and reading at once: a server may answer before it has read the whole request.
    let write = async {
        let written = writer.write_all(wire).await;
        if written.is_ok() && half_close {
            let _ = writer.shutdown().await;
        }
        written
    };
    let exchange = async {
        let (mut read, mut write) = (pin!(read), pin!(write));
        let mut written = false;
        loop {
            tokio::select! {
                ended = &mut read => return ended,
                _ = &mut write, if !written => written = true,
            }
        }
    };
    tokio::time::timeout(patience, exchange)
        .await
        .unwrap_or(Ended::TimedOut)
}

/// One whole response at the start of `raw`, skipping interim (1xx) ones; `None` until it is all
/// there. A response without `Content-Length`, or to a HEAD request, is taken as ending with
/// its head (the ingress always sends a length).
fn parse(raw: &mut Vec<u8>, head_only: bool) -> Option<Answer> {
    loop {
        let end = raw.windows(4).position(|w| w == b"\r\n\r\n")?;
        let head = String::from_utf8_lossy(&raw[..end]).into_owned();
        let mut lines = head.split("\r\n");
        let status: u16 = lines.next()?.split(' ').nth(1)?.parse().ok()?;
        let headers: Vec<(String, String)> = lines
            .filter_map(|line| line.split_once(':'))
            .map(|(n, v)| (n.trim().to_ascii_lowercase(), v.trim().to_owned()))
            .collect();
        if (100..200).contains(&status) {
            raw.drain(..end + 4);
            continue;
        }
        let length: usize = headers
            .iter()
            .find(|(n, _)| n == "content-length")
            .and_then(|(_, v)| v.parse().ok())
            .filter(|_| !head_only)
            .unwrap_or(0);
        if raw.len() < end + 4 + length {
            return None;
        }
        let body = raw[end + 4..end + 4 + length].to_vec();
        return Some(Answer {
            status,
            headers,
            body,
        });
    }
}
