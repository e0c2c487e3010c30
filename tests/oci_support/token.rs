//! A token server for the registry's `token` auth, written from the distribution
//! token protocol (docs/spec/auth/token.md and jwt.md): `GET /token?service=…&scope=…`
//! with Basic credentials answers `{"token", "access_token", "expires_in"}`, the token
//! an ES256 JWT (`iss`, `aud` = service, `exp`, `nbf`, `access` = the granted
//! repository actions) that the registry checks against the JWKS written here.
//! Counts the tokens it issued.

use std::io::{BufRead, BufReader, Write};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

use ring::rand::SystemRandom;
use ring::signature::{ECDSA_P256_SHA256_FIXED_SIGNING, EcdsaKeyPair, KeyPair};

pub const ISSUER: &str = "hawser-test-issuer";
pub const SERVICE: &str = "hawser-registry";
const KID: &str = "hawser-test-key";

pub struct TokenServer {
    pub port: u16,
    pub jwks: PathBuf,
    issued: Arc<AtomicUsize>,
    refused: Arc<AtomicUsize>,
}

impl TokenServer {
    /// Serves tokens for `user:password`, lasting `lifetime` seconds.
    pub fn start(dir: &Path, user: &str, password: &str, lifetime: u64) -> TokenServer {
        let rng = SystemRandom::new();
        let pkcs8 = EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &rng).unwrap();
        let key = EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, pkcs8.as_ref(), &rng)
            .unwrap();
        let point = key.public_key().as_ref().to_vec();
        let jwks = dir.join("jwks.json");
        std::fs::write(
            &jwks,
            format!(
                r#"{{"keys":[{{"kty":"EC","crv":"P-256","alg":"ES256","use":"sig","kid":"{KID}","x":"{}","y":"{}"}}]}}"#,
                b64url(&point[1..33]),
                b64url(&point[33..65])
            ),
        )
        .unwrap();
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let issued = Arc::new(AtomicUsize::new(0));
        let refused = Arc::new(AtomicUsize::new(0));
        let expected = format!(
            "Basic {}",
            super::base64(format!("{user}:{password}").as_bytes())
        );
        let (counter, refusals) = (Arc::clone(&issued), Arc::clone(&refused));
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                let Ok(mut stream) = stream else { continue };
                let mut reader = BufReader::new(stream.try_clone().unwrap());
                let mut request = String::new();
                let mut authorized = false;
                let mut line = String::new();
                if reader.read_line(&mut request).is_err() {
                    continue;
                }
                while reader.read_line(&mut line).is_ok_and(|n| n > 2) {
                    if let Some((k, v)) = line.trim_end().split_once(':')
                        && k.eq_ignore_ascii_case("authorization")
                    {
                        authorized = v.trim() == expected;
                    }
                    line.clear();
                }
                let target = request.split(' ').nth(1).unwrap_or("");
                let answer = if authorized {
                    counter.fetch_add(1, Ordering::SeqCst);
                    let body = token_body(&key, &rng, target, lifetime);
                    format!(
                        "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                        body.len()
                    )
                } else {
                    refusals.fetch_add(1, Ordering::SeqCst);
                    "HTTP/1.1 401 Unauthorized\r\nWWW-Authenticate: Basic realm=\"token\"\r\nContent-Length: 0\r\nConnection: close\r\n\r\n".to_string()
                };
                let _ = stream.write_all(answer.as_bytes());
            }
        });
        TokenServer {
            port,
            jwks,
            issued,
            refused,
        }
    }

    pub fn realm(&self) -> String {
        format!("http://127.0.0.1:{}/token", self.port)
    }

    pub fn issued(&self) -> usize {
        self.issued.load(Ordering::SeqCst)
    }

    pub fn refused(&self) -> usize {
        self.refused.load(Ordering::SeqCst)
    }
}

/// The JSON answer for `GET /token?…`: every scope asked for is granted.
fn token_body(key: &EcdsaKeyPair, rng: &SystemRandom, target: &str, lifetime: u64) -> String {
    let query = target.split_once('?').map_or("", |(_, q)| q);
    let mut access = Vec::new();
    for (k, v) in query.split('&').filter_map(|kv| kv.split_once('=')) {
        if k != "scope" {
            continue;
        }
        let scope = unescape(v);
        // repository:<name>:<actions>
        let mut parts = scope.splitn(3, ':');
        let (kind, name, actions) = (parts.next(), parts.next(), parts.next());
        if let (Some(kind), Some(name), Some(actions)) = (kind, name, actions) {
            let actions: Vec<&str> = actions.split(',').collect();
            access.push(serde_json::json!({"type": kind, "name": name, "actions": actions}));
        }
    }
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let header = serde_json::json!({"typ": "JWT", "alg": "ES256", "kid": KID});
    let claims = serde_json::json!({
        "iss": ISSUER, "sub": "alice", "aud": SERVICE,
        "exp": now + lifetime, "nbf": now - 10, "iat": now - 10,
        "jti": format!("{now}-{}", access.len()), "access": access,
    });
    let signing_input = format!(
        "{}.{}",
        b64url(header.to_string().as_bytes()),
        b64url(claims.to_string().as_bytes())
    );
    let sig = key.sign(rng, signing_input.as_bytes()).unwrap();
    let token = format!("{signing_input}.{}", b64url(sig.as_ref()));
    serde_json::json!({"token": token, "access_token": token, "expires_in": lifetime}).to_string()
}

fn unescape(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%'
            && i + 2 < b.len()
            && let Ok(v) = u8::from_str_radix(&s[i + 1..i + 3], 16)
        {
            out.push(v);
            i += 3;
            continue;
        }
        out.push(if b[i] == b'+' { b' ' } else { b[i] });
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn b64url(input: &[u8]) -> String {
    super::base64(input)
        .trim_end_matches('=')
        .replace('+', "-")
        .replace('/', "_")
}
