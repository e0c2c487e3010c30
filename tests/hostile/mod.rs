//! A fake HTTP server for hostile-server tests (a std `TcpListener` answering crafted
//! bytes, CONNECT included so it can pose as a proxy) and a hand-made pack fixture
//! whose bytes can be corrupted one field at a time.
#![allow(dead_code)]

use std::io::{Read, Write};
use std::net::TcpListener;
use std::sync::Arc;

use flate2::Compression;
use flate2::write::ZlibEncoder;
use sha1_checked::{Digest, Sha1};

/// What the fake server does with one request.
pub enum Reply {
    Raw(Vec<u8>),
    /// Answer nothing and hold the connection until the client gives up.
    Stall,
    /// Write the head, then call the writer until it (or the client) gives up: the
    /// endless and trickling bodies.
    Stream(Vec<u8>, BodyWriter),
}

/// Writes the next piece of an endless body.
pub type BodyWriter = Box<dyn FnMut(&mut dyn Write) -> std::io::Result<()> + Send>;

pub struct Request {
    pub method: String,
    pub path: String,
    pub headers: String,
    pub body: Vec<u8>,
}

pub type Handler = Arc<dyn Fn(&Request) -> Reply + Send + Sync>;

/// Serves `handler` on a fresh loopback port; returns the base URL.
pub fn serve(handler: impl Fn(&Request) -> Reply + Send + Sync + 'static) -> String {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let handler: Handler = Arc::new(handler);
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(stream) = stream else { continue };
            let handler = Arc::clone(&handler);
            std::thread::spawn(move || answer(stream, &handler));
        }
    });
    format!("http://127.0.0.1:{port}")
}

pub fn answer<S: Read + Write>(mut stream: S, handler: &Handler) {
    // A proxy client opens a tunnel first (CONNECT); the request then follows on the
    // same connection and is answered like a direct one.
    while let Some(req) = read_request(&mut stream) {
        if req.method == "CONNECT" {
            let _ = stream.write_all(b"HTTP/1.1 200 Connection established\r\n\r\n");
            continue;
        }
        let mut buf = [0u8; 1];
        match handler(&req) {
            Reply::Raw(bytes) => {
                let _ = stream.write_all(&bytes);
            }
            Reply::Stream(head, mut body) => {
                if stream.write_all(&head).is_ok() {
                    while body(&mut stream).and_then(|()| stream.flush()).is_ok() {}
                }
            }
            Reply::Stall => {
                // Blocks until the client closes the connection.
                let _ = stream.read(&mut buf);
            }
        }
        return;
    }
}

pub fn read_request<S: Read>(stream: &mut S) -> Option<Request> {
    let mut data = Vec::new();
    let mut buf = [0u8; 1];
    // Byte by byte, so nothing after the request (a tunnelled one) is consumed.
    while !data.ends_with(b"\r\n\r\n") {
        match stream.read(&mut buf) {
            Ok(0) | Err(_) => return None,
            Ok(_) => data.push(buf[0]),
        }
    }
    let head = String::from_utf8_lossy(&data).to_string();
    let mut lines = head.lines();
    let head = head.clone();
    let mut first = lines.next().unwrap_or_default().split(' ');
    let method = first.next().unwrap_or_default().to_string();
    let path = first.next().unwrap_or_default().to_string();
    let length: usize = lines
        .filter_map(|l| l.split_once(':'))
        .find(|(k, _)| k.eq_ignore_ascii_case("content-length"))
        .map(|(_, v)| v.trim().parse().unwrap())
        .unwrap_or(0);
    let mut body = vec![0u8; length];
    stream.read_exact(&mut body).ok()?;
    Some(Request {
        method,
        path,
        headers: head,
        body,
    })
}

pub fn http(status: u16, content_type: &str, body: &[u8]) -> Reply {
    let mut out = format!(
        "HTTP/1.1 {status} X\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    )
    .into_bytes();
    out.extend_from_slice(body);
    Reply::Raw(out)
}

/// A close-delimited answer whose body `next` writes piece by piece, forever or
/// until it returns an error.
pub fn endless(
    content_type: &str,
    next: impl FnMut(&mut dyn Write) -> std::io::Result<()> + Send + 'static,
) -> Reply {
    let head =
        format!("HTTP/1.1 200 X\r\nContent-Type: {content_type}\r\nConnection: close\r\n\r\n");
    Reply::Stream(head.into_bytes(), Box::new(next))
}

/// Like [`http`], with the body gzip-encoded (`Content-Encoding: gzip`).
pub fn http_gzip(status: u16, content_type: &str, body: &[u8]) -> Reply {
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), Compression::default());
    gz.write_all(body).unwrap();
    let body = gz.finish().unwrap();
    let mut out = format!(
        "HTTP/1.1 {status} X\r\nContent-Type: {content_type}\r\nContent-Encoding: gzip\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    )
    .into_bytes();
    out.extend_from_slice(&body);
    Reply::Raw(out)
}

/// Serves `handler` over TLS with the PEM certificate chain and key given (from
/// `tests/env/make-test-ca`); returns the base URL (`https://127.0.0.1:<port>`).
pub fn serve_tls(
    cert: &std::path::Path,
    key: &std::path::Path,
    handler: impl Fn(&Request) -> Reply + Send + Sync + 'static,
) -> String {
    use rustls::pki_types::pem::PemObject;
    use rustls::pki_types::{CertificateDer, PrivateKeyDer};
    let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(cert)
        .unwrap()
        .map(|c| c.unwrap())
        .collect();
    let key = PrivateKeyDer::from_pem_file(key).unwrap();
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = Arc::new(
        rustls::ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_no_client_auth()
            .with_single_cert(certs, key)
            .unwrap(),
    );
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let handler: Handler = Arc::new(handler);
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(stream) = stream else { continue };
            let handler = Arc::clone(&handler);
            let config = Arc::clone(&config);
            std::thread::spawn(move || {
                let Ok(conn) = rustls::ServerConnection::new(config) else {
                    return;
                };
                answer(rustls::StreamOwned::new(conn, stream), &handler);
            });
        }
    });
    format!("https://127.0.0.1:{port}")
}

/// A `3xx` answer pointing at `location`.
pub fn redirect(status: u16, location: &str) -> Reply {
    Reply::Raw(
        format!(
            "HTTP/1.1 {status} Moved\r\nLocation: {location}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
        )
        .into_bytes(),
    )
}

/// The value of header `name` in a request, if present (case-insensitive name).
pub fn header(req: &Request, name: &str) -> Option<String> {
    req.headers
        .lines()
        .filter_map(|l| l.split_once(':'))
        .find(|(k, _)| k.eq_ignore_ascii_case(name))
        .map(|(_, v)| v.trim().to_string())
}

/// Forwards a request to `inner` (a real Git server) as it came: path, body and the
/// headers Git needs (`Git-Protocol`, `Authorization`, `Content-Type`), so the real
/// `git http-backend` answers everything this server does not lie about.
pub fn relay(inner: &str, path: &str, req: &Request) -> Reply {
    let client = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .max_redirects(0)
        .build()
        .new_agent();
    let target = format!("{inner}{path}");
    let pass = ["git-protocol", "authorization", "content-type", "accept"];
    let mut resp = if req.method == "GET" {
        let mut r = client.get(&target);
        for name in pass {
            if let Some(v) = header(req, name) {
                r = r.header(name, v);
            }
        }
        r.call().unwrap()
    } else {
        let mut r = client.post(&target);
        for name in pass {
            if let Some(v) = header(req, name) {
                r = r.header(name, v);
            }
        }
        r.send(&req.body[..]).unwrap()
    };
    let body = resp.body_mut().read_to_vec().unwrap();
    let content_type = resp
        .headers()
        .get("content-type")
        .map(|v| v.to_str().unwrap().to_string())
        .unwrap_or_else(|| "text/plain".into());
    http(resp.status().as_u16(), &content_type, &body)
}

/// Forwards a request to `inner` and returns the status, content type and body.
pub fn forward(inner: &str, req: &Request) -> (u16, String, Vec<u8>) {
    let client = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .build()
        .new_agent();
    let target = format!("{inner}{}", req.path);
    let mut resp = if req.method == "GET" {
        client.get(&target).call().unwrap()
    } else {
        client.post(&target).send(&req.body[..]).unwrap()
    };
    let body = resp.body_mut().read_to_vec().unwrap();
    let content_type = resp.headers()["content-type"].to_str().unwrap().to_string();
    (resp.status().as_u16(), content_type, body)
}

pub fn pkt(data: &[u8]) -> Vec<u8> {
    let mut out = format!("{:04x}", data.len() + 4).into_bytes();
    out.extend_from_slice(data);
    out
}

pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

pub fn object_id(kind: &str, data: &[u8]) -> [u8; 20] {
    let mut sha = Sha1::new();
    sha.update(format!("{kind} {}\0", data.len()).as_bytes());
    sha.update(data);
    sha.finalize().into()
}

pub fn zlib(data: &[u8]) -> Vec<u8> {
    let mut z = ZlibEncoder::new(Vec::new(), Compression::default());
    z.write_all(data).unwrap();
    z.finish().unwrap()
}

/// One pack entry: type code, what its header declares, and the raw (uncompressed)
/// payload, plus the extra header bytes of delta entries.
pub struct Entry {
    pub code: u8,
    pub extra: Vec<u8>,
    pub payload: Vec<u8>,
}

pub fn entry_header(code: u8, size: usize) -> Vec<u8> {
    let mut out = Vec::new();
    let mut byte = (code << 4) | (size & 15) as u8;
    let mut rest = size >> 4;
    while rest > 0 {
        out.push(byte | 0x80);
        byte = (rest & 0x7f) as u8;
        rest >>= 7;
    }
    out.push(byte);
    out
}

/// Builds a pack; returns its bytes and the offset of each entry.
pub fn pack(entries: &[Entry]) -> (Vec<u8>, Vec<usize>) {
    let mut p = b"PACK\0\0\0\x02".to_vec();
    p.extend((entries.len() as u32).to_be_bytes());
    let mut offsets = Vec::new();
    for e in entries {
        offsets.push(p.len());
        p.extend(entry_header(e.code, e.payload.len()));
        p.extend(&e.extra);
        p.extend(zlib(&e.payload));
    }
    let sum: [u8; 20] = Sha1::digest(&p).into();
    p.extend(sum);
    (p, offsets)
}

pub fn retrailer(mut p: Vec<u8>) -> Vec<u8> {
    let n = p.len() - 20;
    let sum: [u8; 20] = Sha1::digest(&p[..n]).into();
    p[n..].copy_from_slice(&sum);
    p
}

/// A commit whose tree holds a base blob, a REF_DELTA blob and an OFS_DELTA blob.
pub struct Fixture {
    pub commit: String,
    pub entries: Vec<Entry>,
}

pub fn fixture() -> Fixture {
    let base = b"hello world, this is the base blob\n".to_vec();
    let by_ref = b"hello world, this is the base\n".to_vec(); // copy 29 bytes + "\n"
    let by_ofs = b"this is the base blob\n".to_vec(); // copy from offset 13
    let ref_delta = vec![base.len() as u8, by_ref.len() as u8, 0x90, 29, 1, b'\n'];
    let ofs_delta = vec![base.len() as u8, by_ofs.len() as u8, 0x91, 13, 22];
    let base_id = object_id("blob", &base);
    let mut tree = Vec::new();
    for (name, data) in [("a.txt", &base), ("b.txt", &by_ref), ("c.txt", &by_ofs)] {
        tree.extend(format!("100644 {name}\0").as_bytes());
        tree.extend(object_id("blob", data));
    }
    let commit = format!(
        "tree {}\nauthor A <a@example.com> 0 +0000\ncommitter A <a@example.com> 0 +0000\n\ncrafted\n",
        hex(&object_id("tree", &tree))
    );
    let commit_id = hex(&object_id("commit", commit.as_bytes()));
    // Offsets: header 12; the OFS_DELTA's base is entry 0.
    let entries = vec![
        Entry {
            code: 3,
            extra: vec![],
            payload: base,
        },
        Entry {
            code: 7,
            extra: base_id.to_vec(),
            payload: ref_delta,
        },
        Entry {
            code: 2,
            extra: vec![],
            payload: tree,
        },
        Entry {
            code: 1,
            extra: vec![],
            payload: commit.into_bytes(),
        },
        Entry {
            code: 6,
            extra: vec![],
            payload: ofs_delta,
        },
    ];
    Fixture {
        commit: commit_id,
        entries,
    }
}

/// The fixture's pack with the OFS_DELTA's back-offset filled in.
pub fn fixture_pack(f: &Fixture) -> Vec<u8> {
    let (_, offsets) = pack(&f.entries[..4]);
    let last = offsets[3]
        + entry_header(1, f.entries[3].payload.len()).len()
        + zlib(&f.entries[3].payload).len();
    // OFS_DELTA back-offset to entry 0 (at 12), in git's offset varint encoding.
    let mut extra = Vec::new();
    let mut v = last - 12;
    let mut bytes = vec![(v & 0x7f) as u8];
    v >>= 7;
    while v > 0 {
        v -= 1;
        bytes.push(0x80 | (v & 0x7f) as u8);
        v >>= 7;
    }
    bytes.reverse();
    extra.extend(bytes);
    let mut entries: Vec<Entry> = f
        .entries
        .iter()
        .map(|e| Entry {
            code: e.code,
            extra: e.extra.clone(),
            payload: e.payload.clone(),
        })
        .collect();
    entries[4].extra = extra;
    pack(&entries).0
}

/// A server speaking v2 that lists `commit` as main and answers fetch with `body`.
pub fn git_server(commit: String, fetch_body: Vec<u8>) -> String {
    serve(move |req| {
        if req.method == "GET" && req.path.contains("/info/refs") {
            let mut body = Vec::new();
            for line in [
                "version 2\n",
                "ls-refs\n",
                "fetch=shallow\n",
                "object-format=sha1\n",
            ] {
                body.extend(pkt(line.as_bytes()));
            }
            body.extend(b"0000");
            return http(200, "application/x-git-upload-pack-advertisement", &body);
        }
        let text = String::from_utf8_lossy(&req.body);
        if text.contains("command=ls-refs") {
            let mut body = pkt(format!("{commit} refs/heads/main\n").as_bytes());
            body.extend(b"0000");
            return http(200, "application/x-git-upload-pack-result", &body);
        }
        http(200, "application/x-git-upload-pack-result", &fetch_body)
    })
}

/// `packfile` section carrying `pack` on side-band channel 1.
pub fn packfile(pack: &[u8]) -> Vec<u8> {
    let mut body = pkt(b"packfile\n");
    for chunk in pack.chunks(65515) {
        let mut data = vec![1u8];
        data.extend_from_slice(chunk);
        body.extend(pkt(&data));
    }
    body.extend(b"0000");
    body
}
