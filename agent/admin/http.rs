//! Just enough HTTP/1.1 for the admin endpoints: one request per connection, a
//! request line, headers and a `Content-Length` body, then `Connection: close`.
//!
//! In: bytes from an untrusted peer. Out: a [`Head`] (then, if the route wants it,
//! the body) or an [`HttpError`] that maps to a 4xx/5xx status. Bounded everywhere:
//! the head is at most [`MAX_HEAD`] bytes, bodies at most the caller's limit, and
//! chunked bodies are refused (webhook senders all send `Content-Length`).

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

/// Request line plus headers.
pub const MAX_HEAD: usize = 16 * 1024;
pub const MAX_HEADERS: usize = 64;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum HttpError {
    #[error("malformed request: {0}")]
    Malformed(&'static str),
    #[error("request head larger than {MAX_HEAD} bytes")]
    HeadTooLarge,
    #[error("more than {MAX_HEADERS} request headers")]
    TooManyHeaders,
    #[error("body of {length} bytes exceeds the limit of {limit}")]
    BodyTooLarge { length: u64, limit: usize },
    #[error("transfer-encoding is not supported; send Content-Length")]
    TransferEncoding,
    #[error("connection closed before the request was complete")]
    Closed,
}

impl HttpError {
    pub fn status(&self) -> u16 {
        match self {
            HttpError::Malformed(_) | HttpError::Closed => 400,
            HttpError::HeadTooLarge | HttpError::TooManyHeaders => 431,
            HttpError::BodyTooLarge { .. } => 413,
            HttpError::TransferEncoding => 501,
        }
    }
}

/// A parsed request head. Header names are lowercase.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Head {
    pub method: String,
    /// The path, without the query string.
    pub path: String,
    pub headers: Vec<(String, String)>,
    pub content_length: u64,
    /// Body bytes that arrived with the head.
    pub(crate) early_body: Vec<u8>,
}

impl Head {
    /// The first value of header `name` (lowercase).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }
}

/// Reads and parses the request head.
pub async fn read_head<R: AsyncRead + Unpin>(reader: &mut R) -> Result<Head, HttpError> {
    let mut buf = Vec::with_capacity(1024);
    let mut chunk = [0u8; 1024];
    let end = loop {
        // Search only the new bytes (plus 3 of overlap) for the blank line.
        let from = buf.len().saturating_sub(3);
        let n = reader
            .read(&mut chunk)
            .await
            .map_err(|_| HttpError::Closed)?;
        if n == 0 {
            return Err(HttpError::Closed);
        }
        buf.extend_from_slice(&chunk[..n]);
        if let Some(pos) = find(&buf[from..], b"\r\n\r\n") {
            break from + pos;
        }
        if buf.len() > MAX_HEAD {
            return Err(HttpError::HeadTooLarge);
        }
    };
    if end > MAX_HEAD {
        return Err(HttpError::HeadTooLarge);
    }
    let mut head = parse_head(&buf[..end])?;
    head.early_body = buf[end + 4..].to_vec();
    Ok(head)
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

/// Parses the head text (without the final blank line).
pub fn parse_head(bytes: &[u8]) -> Result<Head, HttpError> {
    let text = std::str::from_utf8(bytes).map_err(|_| HttpError::Malformed("head is not UTF-8"))?;
    let mut lines = text.split("\r\n");
    let request_line = lines.next().unwrap_or_default();
    let mut parts = request_line.split(' ');
    let (Some(method), Some(target), Some(version), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(HttpError::Malformed(
            "request line is not METHOD TARGET VERSION",
        ));
    };
    if method.is_empty() || !method.bytes().all(|b| b.is_ascii_uppercase()) {
        return Err(HttpError::Malformed("bad method"));
    }
    if version != "HTTP/1.1" && version != "HTTP/1.0" {
        return Err(HttpError::Malformed("unsupported HTTP version"));
    }
    if !target.starts_with('/') {
        return Err(HttpError::Malformed("target is not an absolute path"));
    }
    let path = target
        .split(['?', '#'])
        .next()
        .unwrap_or(target)
        .to_string();

    let mut headers = Vec::new();
    let mut content_length: Option<u64> = None;
    for line in lines {
        if headers.len() == MAX_HEADERS {
            return Err(HttpError::TooManyHeaders);
        }
        if line.starts_with([' ', '\t']) {
            return Err(HttpError::Malformed("folded header line"));
        }
        let (name, value) = line
            .split_once(':')
            .ok_or(HttpError::Malformed("header without colon"))?;
        if name.is_empty() || !name.bytes().all(is_token) {
            return Err(HttpError::Malformed("bad header name"));
        }
        let name = name.to_ascii_lowercase();
        let value = value.trim_matches([' ', '\t']).to_string();
        match name.as_str() {
            "content-length" => {
                // 1*DIGIT only: `parse` alone would also take "+5".
                let n: u64 = Some(value.as_str())
                    .filter(|v| !v.is_empty() && v.bytes().all(|b| b.is_ascii_digit()))
                    .and_then(|v| v.parse().ok())
                    .ok_or(HttpError::Malformed("content-length is not a number"))?;
                if content_length.is_some_and(|c| c != n) {
                    return Err(HttpError::Malformed("conflicting content-length headers"));
                }
                content_length = Some(n);
            }
            "transfer-encoding" => return Err(HttpError::TransferEncoding),
            _ => {}
        }
        headers.push((name, value));
    }
    Ok(Head {
        method: method.to_string(),
        path,
        headers,
        content_length: content_length.unwrap_or(0),
        early_body: Vec::new(),
    })
}

fn is_token(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b)
}

/// Reads the body announced by `head`, at most `limit` bytes. Answers
/// `Expect: 100-continue` first, so curl and friends do not wait a second.
pub async fn read_body<S: AsyncRead + AsyncWrite + Unpin>(
    stream: &mut S,
    head: &Head,
    limit: usize,
) -> Result<Vec<u8>, HttpError> {
    let length = head.content_length;
    let Some(len) = usize::try_from(length).ok().filter(|&l| l <= limit) else {
        return Err(HttpError::BodyTooLarge { length, limit });
    };
    if head.early_body.len() > len {
        return Err(HttpError::Malformed("more bytes than content-length"));
    }
    let mut body = Vec::with_capacity(len);
    body.extend_from_slice(&head.early_body);
    if body.len() < len
        && head
            .header("expect")
            .is_some_and(|v| v.eq_ignore_ascii_case("100-continue"))
    {
        stream
            .write_all(b"HTTP/1.1 100 Continue\r\n\r\n")
            .await
            .map_err(|_| HttpError::Closed)?;
    }
    let missing = len - body.len();
    body.resize(len, 0);
    let start = len - missing;
    stream
        .read_exact(&mut body[start..])
        .await
        .map_err(|_| HttpError::Closed)?;
    Ok(body)
}

/// A complete response; always closes the connection.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Response {
    pub status: u16,
    pub content_type: &'static str,
    pub extra: Vec<(&'static str, String)>,
    pub body: Vec<u8>,
}

impl Response {
    pub fn text(status: u16, body: impl Into<String>) -> Response {
        let mut body = body.into().into_bytes();
        body.push(b'\n');
        Response {
            status,
            content_type: "text/plain; charset=utf-8",
            extra: Vec::new(),
            body,
        }
    }

    pub fn with_header(mut self, name: &'static str, value: impl Into<String>) -> Response {
        self.extra.push((name, value.into()));
        self
    }

    /// Writes the response; `head_only` for HEAD requests (headers, no body).
    pub async fn write<W: AsyncWrite + Unpin>(
        &self,
        w: &mut W,
        head_only: bool,
    ) -> std::io::Result<()> {
        let mut out = format!(
            "HTTP/1.1 {} {}\r\nContent-Type: {}\r\nContent-Length: {}\r\nConnection: close\r\n",
            self.status,
            reason(self.status),
            self.content_type,
            self.body.len()
        );
        for (name, value) in &self.extra {
            out.push_str(&format!("{name}: {value}\r\n"));
        }
        out.push_str("\r\n");
        let mut bytes = out.into_bytes();
        if !head_only {
            bytes.extend_from_slice(&self.body);
        }
        w.write_all(&bytes).await?;
        w.flush().await
    }
}

fn reason(status: u16) -> &'static str {
    match status {
        200 => "OK",
        202 => "Accepted",
        400 => "Bad Request",
        401 => "Unauthorized",
        404 => "Not Found",
        405 => "Method Not Allowed",
        408 => "Request Timeout",
        413 => "Content Too Large",
        431 => "Request Header Fields Too Large",
        500 => "Internal Server Error",
        501 => "Not Implemented",
        503 => "Service Unavailable",
        _ => "Unknown",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_a_webhook_head() {
        let head = parse_head(
            b"POST /hook?x=1 HTTP/1.1\r\nHost: a\r\nX-Hub-Signature-256: sha256=ab\r\nContent-Length: 12",
        )
        .unwrap();
        assert_eq!(head.method, "POST");
        assert_eq!(head.path, "/hook");
        assert_eq!(head.content_length, 12);
        assert_eq!(head.header("x-hub-signature-256"), Some("sha256=ab"));
        assert_eq!(head.header("host"), Some("a"));
    }

    #[test]
    fn refuses_malformed_heads() {
        let cases: [(&[u8], u16); 13] = [
            (b"GET /", 400),
            (b"GET / HTTP/1.1 extra", 400),
            (b"get / HTTP/1.1", 400),
            (b"GET / HTTP/2", 400),
            (b"GET http://x/ HTTP/1.1", 400),
            (b"GET / HTTP/1.1\r\nno-colon", 400),
            (b"GET / HTTP/1.1\r\nbad name: x", 400),
            (b"GET / HTTP/1.1\r\na: b\r\n folded", 400),
            (b"POST / HTTP/1.1\r\nContent-Length: -1", 400),
            (b"POST / HTTP/1.1\r\nContent-Length: +1", 400),
            (
                b"POST / HTTP/1.1\r\nContent-Length: 1\r\nContent-Length: 2",
                400,
            ),
            (b"POST / HTTP/1.1\r\nTransfer-Encoding: chunked", 501),
            (b"GET / HTTP/1.1\r\nx: \xff", 400),
        ];
        for (bytes, status) in cases {
            let err = parse_head(bytes).unwrap_err();
            assert_eq!(
                err.status(),
                status,
                "{:?}: {err}",
                String::from_utf8_lossy(bytes)
            );
        }
        let many: String = (0..=MAX_HEADERS).map(|i| format!("\r\nh{i}: v")).collect();
        let err = parse_head(format!("GET / HTTP/1.1{many}").as_bytes()).unwrap_err();
        assert_eq!(
            (err.status(), err.to_string().as_str()),
            (431, "more than 64 request headers")
        );
    }

    /// Untrusted bytes never panic the parser: random heads, and random mutations of
    /// a valid one (a poor man's fuzz run; xorshift keeps it deterministic).
    #[tokio::test]
    async fn arbitrary_bytes_never_panic() {
        let valid = b"POST /hook HTTP/1.1\r\nContent-Length: 3\r\nX-Gitea-Signature: ab\r\n\r\nabc";
        let mut seed = 0x2545_f491_4f6c_dd1d_u64;
        let mut next = move || {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed
        };
        for round in 0..2000 {
            let mut bytes = if round % 2 == 0 {
                valid.to_vec()
            } else {
                (0..next() % 200).map(|_| next() as u8).collect()
            };
            for _ in 0..next() % 8 {
                if bytes.is_empty() {
                    break;
                }
                let at = (next() % bytes.len() as u64) as usize;
                bytes[at] = [b'\r', b'\n', b':', b' ', 0xff, next() as u8][(next() % 6) as usize];
            }
            let _ = parse_head(&bytes);
            if let Ok(head) = read_head(&mut bytes.as_slice()).await {
                // The peer half is dropped: a short body ends in `Closed`, not a hang.
                let (mut stream, _) = tokio::io::duplex(64);
                let _ = read_body(&mut stream, &head, 16).await;
            }
        }
    }

    #[tokio::test]
    async fn reads_head_and_body_split_across_reads() {
        let (mut client, mut server) = tokio::io::duplex(8);
        let writer = tokio::spawn(async move {
            client
                .write_all(b"POST /hook HTTP/1.1\r\nContent-Length: 5\r\n\r\nhello")
                .await
                .unwrap();
            client
        });
        let head = read_head(&mut server).await.unwrap();
        let body = read_body(&mut server, &head, 1024).await.unwrap();
        assert_eq!(body, b"hello");
        drop(writer.await.unwrap());
    }

    #[tokio::test]
    async fn bounds_head_and_body() {
        let big = format!("GET / HTTP/1.1\r\nx: {}\r\n\r\n", "a".repeat(MAX_HEAD));
        assert_eq!(
            read_head(&mut big.as_bytes()).await,
            Err(HttpError::HeadTooLarge)
        );
        assert_eq!(
            read_head(&mut &b"GET / HTTP/1.1\r\n"[..]).await,
            Err(HttpError::Closed)
        );

        let mut stream = tokio::io::duplex(64).0;
        let head = parse_head(b"POST / HTTP/1.1\r\nContent-Length: 11").unwrap();
        let err = read_body(&mut stream, &head, 10).await.unwrap_err();
        assert_eq!(
            (err.status(), err.to_string().contains("11 bytes")),
            (413, true)
        );
    }

    #[tokio::test]
    async fn writes_a_closing_response() {
        let mut out = Vec::new();
        let response = Response::text(405, "use GET").with_header("Allow", "GET, HEAD");
        response.write(&mut out, false).await.unwrap();
        let text = String::from_utf8(out).unwrap();
        assert!(
            text.starts_with("HTTP/1.1 405 Method Not Allowed\r\n"),
            "{text}"
        );
        assert!(text.contains("Content-Length: 8\r\n") && text.contains("Allow: GET, HEAD\r\n"));
        assert!(text.contains("Connection: close\r\n") && text.ends_with("\r\n\r\nuse GET\n"));
        let mut out = Vec::new();
        response.write(&mut out, true).await.unwrap();
        assert!(String::from_utf8(out).unwrap().ends_with("\r\n\r\n"));
    }
}
