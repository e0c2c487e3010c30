//! Test support shared by hawser's integration tests: a real Git server
//! (`GitServer`, git's own `http-backend` behind `tests/env/gitserver.py`),
//! repositories driven through the git CLI (`Repo`), and a byte-for-byte tree
//! comparison (`compare_trees`).
//!
//! Use it from a test file with `mod support;`. Every value cleans up after
//! itself on drop: servers are killed, temporary directories removed.

// Each integration test is its own crate and uses only part of this module;
// helpers and re-exports unused by one test crate are expected there.
#![allow(dead_code, unused_imports)]

pub mod agent;
pub mod cluster;
mod git;
pub mod oracle;
pub mod parity;
mod server;
mod tree;
pub mod world;

pub use git::{Repo, git_command, run, run_bytes};
pub use server::{GitServer, GitServerOptions, LoggedRequest};
pub use tree::{assert_same_tree, compare_trees};

use std::time::{Duration, Instant};

/// Polls `probe` until it yields a value or `timeout` passes; panics naming
/// `what` on timeout. The short pause between probes is a poll interval, not
/// a guess at how long the condition takes.
pub fn wait_for<T>(what: &str, timeout: Duration, mut probe: impl FnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(value) = probe() {
            return value;
        }
        if Instant::now() >= deadline {
            panic!("timed out after {timeout:?} waiting for {what}");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Standard base64 (RFC 4648, with padding), for `Authorization: Basic`.
pub fn base64(input: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::with_capacity(input.len().div_ceil(3) * 4);
    for chunk in input.chunks(3) {
        let b = [
            chunk[0],
            *chunk.get(1).unwrap_or(&0),
            *chunk.get(2).unwrap_or(&0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(char::from(ALPHABET[(n >> (18 - 6 * i)) as usize & 63]));
            } else {
                out.push('=');
            }
        }
    }
    out
}

/// Encodes one pkt-line (`0000`-style length prefix including itself).
pub fn pkt_line(payload: &[u8]) -> Vec<u8> {
    let mut out = format!("{:04x}", payload.len() + 4).into_bytes();
    out.extend_from_slice(payload);
    out
}

/// Splits a pkt-line stream into packets; `None` stands for the special
/// packets `0000` (flush), `0001` (delim) and `0002` (response end).
/// Panics on malformed input: in tests that is the server misbehaving.
pub fn parse_pkt_lines(mut data: &[u8]) -> Vec<Option<Vec<u8>>> {
    let mut packets = Vec::new();
    while !data.is_empty() {
        assert!(data.len() >= 4, "truncated pkt-line header in {data:?}");
        let len = std::str::from_utf8(&data[..4])
            .ok()
            .and_then(|text| usize::from_str_radix(text, 16).ok())
            .unwrap_or_else(|| panic!("bad pkt-line length {:?}", &data[..4]));
        if len < 4 {
            packets.push(None);
            data = &data[4..];
            continue;
        }
        assert!(data.len() >= len, "truncated pkt-line payload");
        packets.push(Some(data[4..len].to_vec()));
        data = &data[len..];
    }
    packets
}
