//! A loopback HTTP/1.1 server that answers like a forge and records what it was
//! asked, and a clock that records waits instead of sleeping.

// Shared by several test crates, each using part of it.
#![allow(dead_code)]

use std::collections::VecDeque;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use hawser::report::forge::Sleeper;
use serde_json::Value;

/// One request as the server saw it.
#[derive(Debug, Clone)]
pub struct Recorded {
    pub method: String,
    pub target: String,
    pub headers: Vec<(String, String)>,
    pub body: Value,
}

impl Recorded {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

/// A canned answer.
#[derive(Clone)]
pub struct Answer {
    pub status: u16,
    pub headers: Vec<(&'static str, String)>,
    pub body: String,
}

pub fn answer(status: u16, body: &str) -> Answer {
    Answer {
        status,
        headers: Vec::new(),
        body: body.to_string(),
    }
}

/// A loopback HTTP/1.1 server: answers from a queue (then 201 `{}`, or a default),
/// records requests.
pub struct Server {
    pub url: String,
    seen: Arc<Mutex<Vec<Recorded>>>,
}

impl Server {
    pub fn start(answers: Vec<Answer>) -> Server {
        Server::start_with_default(answers, answer(201, "{}"))
    }

    /// Answers from the queue, then `default` to every further request.
    pub fn start_with_default(answers: Vec<Answer>, default: Answer) -> Server {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let seen = Arc::new(Mutex::new(Vec::new()));
        let queue = Arc::new(Mutex::new(VecDeque::from(answers)));
        let record = Arc::clone(&seen);
        thread::spawn(move || {
            for stream in listener.incoming() {
                let Ok(stream) = stream else { return };
                let next = queue
                    .lock()
                    .unwrap()
                    .pop_front()
                    .unwrap_or_else(|| default.clone());
                serve(stream, &next, &record);
            }
        });
        Server { url, seen }
    }

    pub fn requests(&self) -> Vec<Recorded> {
        self.seen.lock().unwrap().clone()
    }

    pub fn only_request(&self) -> Recorded {
        let requests = self.requests();
        assert_eq!(requests.len(), 1, "{requests:#?}");
        requests.into_iter().next().unwrap()
    }
}

/// Reads one request, records it (before answering, so the client never sees an
/// answer to a request the test cannot yet see), then answers.
fn serve(stream: TcpStream, reply: &Answer, record: &Mutex<Vec<Recorded>>) -> Option<()> {
    let mut reader = BufReader::new(stream.try_clone().ok()?);
    let mut line = String::new();
    reader.read_line(&mut line).ok()?;
    let mut parts = line.split_whitespace();
    let (method, target) = (parts.next()?.to_string(), parts.next()?.to_string());
    let mut headers = Vec::new();
    loop {
        let mut header = String::new();
        reader.read_line(&mut header).ok()?;
        let header = header.trim_end();
        if header.is_empty() {
            break;
        }
        let (name, value) = header.split_once(':')?;
        headers.push((name.trim().to_string(), value.trim().to_string()));
    }
    let length = headers
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case("content-length"))
        .and_then(|(_, v)| v.parse::<usize>().ok())
        .unwrap_or(0);
    let mut body = vec![0; length];
    reader.read_exact(&mut body).ok()?;
    let body = serde_json::from_slice(&body).unwrap_or(Value::Null);
    record.lock().unwrap().push(Recorded {
        method,
        target,
        headers,
        body,
    });
    let mut out = stream;
    let mut response = format!(
        "HTTP/1.1 {} X\r\nContent-Type: application/json\r\nConnection: close\r\n",
        reply.status
    );
    for (name, value) in &reply.headers {
        response.push_str(&format!("{name}: {value}\r\n"));
    }
    response.push_str(&format!(
        "Content-Length: {}\r\n\r\n{}",
        reply.body.len(),
        reply.body
    ));
    out.write_all(response.as_bytes()).ok()
}

/// Records waits instead of sleeping; the clock stands still.
#[derive(Clone, Default)]
pub struct FakeClock {
    pub slept: Arc<Mutex<Vec<Duration>>>,
}

pub const NOW: u64 = 1_800_000_000;

impl Sleeper for FakeClock {
    fn sleep(&self, duration: Duration) {
        self.slept.lock().unwrap().push(duration);
    }

    fn now(&self) -> SystemTime {
        UNIX_EPOCH + Duration::from_secs(NOW)
    }
}
