//! pkt-line framing (git's `gitprotocol-common`): four hex digits giving the length
//! including themselves, `0000` flush, `0001` delimiter, `0002` response end, at most
//! 65520 bytes per packet. In: bytes from the server. Out: packets, or the pack data
//! carried on side-band channel 1. A length that lies, a truncated packet, an `ERR`
//! line or a channel-3 message is an error carrying what the server said.

use std::io::{self, Read};

use super::GitError;

/// The largest packet git sends or accepts, header included.
pub const MAX_PKT_LEN: usize = 65520;

/// One packet.
#[derive(Debug, PartialEq, Eq)]
pub enum Packet<'a> {
    Flush,
    Delim,
    ResponseEnd,
    Data(&'a [u8]),
}

/// Appends a data packet to `out`.
pub fn write_data(out: &mut Vec<u8>, data: &[u8]) {
    // Requests are built from short lines only; a longer one would be a bug here.
    debug_assert!(data.len() + 4 <= MAX_PKT_LEN);
    out.extend(format!("{:04x}", data.len() + 4).as_bytes());
    out.extend(data);
}

/// Appends a text line (with its trailing newline) as a data packet.
pub fn write_line(out: &mut Vec<u8>, line: &str) {
    let mut data = Vec::with_capacity(line.len() + 1);
    data.extend(line.as_bytes());
    data.push(b'\n');
    write_data(out, &data);
}

pub fn write_flush(out: &mut Vec<u8>) {
    out.extend(b"0000");
}

pub fn write_delim(out: &mut Vec<u8>) {
    out.extend(b"0001");
}

/// Reads packets from a byte stream, one at a time, into a reused buffer.
pub struct PktReader<R> {
    inner: R,
    buf: Vec<u8>,
}

impl<R: Read> PktReader<R> {
    pub fn new(inner: R) -> Self {
        Self {
            inner,
            buf: Vec::with_capacity(MAX_PKT_LEN),
        }
    }

    /// The next packet; the end of the stream before a packet is an error because every
    /// git response ends with a flush or response-end packet.
    pub fn read(&mut self) -> Result<Packet<'_>, GitError> {
        let mut head = [0u8; 4];
        read_full(&mut self.inner, &mut head, "pkt-line header")?;
        let len = parse_len(&head)?;
        match len {
            0 => return Ok(Packet::Flush),
            1 => return Ok(Packet::Delim),
            2 => return Ok(Packet::ResponseEnd),
            3 => return Err(GitError::PktLength(String::from_utf8_lossy(&head).into())),
            _ => {}
        }
        self.buf.resize(len - 4, 0);
        read_full(&mut self.inner, &mut self.buf, "pkt-line payload")?;
        if let Some(msg) = self.buf.strip_prefix(b"ERR ") {
            return Err(GitError::Server(text(msg)));
        }
        Ok(Packet::Data(&self.buf))
    }

    /// The next packet as a text line without its trailing newline; `None` for a
    /// flush, delimiter or response end.
    pub fn read_line(&mut self) -> Result<Option<String>, GitError> {
        match self.read()? {
            Packet::Data(data) => {
                let data = data.strip_suffix(b"\n").unwrap_or(data);
                Ok(Some(String::from_utf8_lossy(data).into_owned()))
            }
            _ => Ok(None),
        }
    }

    pub fn into_inner(self) -> R {
        self.inner
    }
}

fn parse_len(head: &[u8; 4]) -> Result<usize, GitError> {
    let bad = || GitError::PktLength(String::from_utf8_lossy(head).into());
    let s = std::str::from_utf8(head).map_err(|_| bad())?;
    let len = usize::from_str_radix(s, 16).map_err(|_| bad())?;
    if len > MAX_PKT_LEN || !s.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(bad());
    }
    Ok(len)
}

fn read_full(r: &mut impl Read, buf: &mut [u8], what: &'static str) -> Result<(), GitError> {
    r.read_exact(buf).map_err(|e| match e.kind() {
        io::ErrorKind::UnexpectedEof => GitError::Truncated(what),
        _ => GitError::Io(e),
    })
}

/// Server text made printable on one line.
pub fn text(data: &[u8]) -> String {
    let s = String::from_utf8_lossy(data);
    let s = s.trim_end_matches('\n');
    s.chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .take(300)
        .collect()
}

/// Demultiplexes side-band-64k: channel 1 is the pack, 2 progress (ignored), 3 a
/// fatal error. Reading ends at the flush packet that closes the section.
pub struct SideBand<R> {
    pkt: PktReader<R>,
    pending: Vec<u8>,
    pos: usize,
    done: bool,
}

impl<R: Read> SideBand<R> {
    pub fn new(pkt: PktReader<R>) -> Self {
        Self {
            pkt,
            pending: Vec::new(),
            pos: 0,
            done: false,
        }
    }

    fn refill(&mut self) -> Result<(), GitError> {
        loop {
            match self.pkt.read()? {
                Packet::Flush | Packet::ResponseEnd => {
                    self.done = true;
                    return Ok(());
                }
                Packet::Delim => return Err(GitError::Unexpected("delimiter in packfile".into())),
                Packet::Data(data) => match data.split_first() {
                    Some((1, rest)) => {
                        if rest.is_empty() {
                            continue;
                        }
                        self.pending.clear();
                        self.pending.extend_from_slice(rest);
                        self.pos = 0;
                        return Ok(());
                    }
                    Some((2, _)) => continue,
                    Some((3, msg)) => return Err(GitError::Server(text(msg))),
                    _ => {
                        return Err(GitError::Unexpected(format!(
                            "side-band packet on channel {}",
                            data.first().copied().unwrap_or(0)
                        )));
                    }
                },
            }
        }
    }
}

impl<R: Read> Read for SideBand<R> {
    fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
        if self.pos == self.pending.len() && !self.done {
            self.refill().map_err(io::Error::other)?;
        }
        if self.done && self.pos == self.pending.len() {
            return Ok(0);
        }
        let n = out.len().min(self.pending.len() - self.pos);
        out[..n].copy_from_slice(&self.pending[self.pos..self.pos + n]);
        self.pos += n;
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_lines_and_specials() {
        let mut out = Vec::new();
        write_line(&mut out, "command=ls-refs");
        write_delim(&mut out);
        write_flush(&mut out);
        assert_eq!(out, b"0014command=ls-refs\n00010000");
        let mut r = PktReader::new(&out[..]);
        assert_eq!(r.read_line().unwrap().as_deref(), Some("command=ls-refs"));
        assert_eq!(r.read().unwrap(), Packet::Delim);
        assert_eq!(r.read().unwrap(), Packet::Flush);
        assert_eq!(
            r.read().unwrap_err().to_string(),
            "truncated pkt-line header"
        );
    }

    #[test]
    fn lying_lengths_are_errors() {
        for bad in [&b"0003"[..], b"zzzz", b"fff1", b"+0aa", b"00"] {
            assert!(PktReader::new(bad).read().is_err(), "{bad:?}");
        }
        let err = PktReader::new(&b"0010short"[..]).read().unwrap_err();
        assert_eq!(err.to_string(), "truncated pkt-line payload");
    }

    #[test]
    fn err_packet_carries_the_server_message() {
        let err = PktReader::new(&b"0016ERR access denied\n"[..])
            .read()
            .unwrap_err();
        assert_eq!(err.to_string(), "server said: access denied");
    }

    #[test]
    fn sideband_joins_channel_one_and_fails_on_channel_three() {
        let mut out = Vec::new();
        write_data(&mut out, b"\x01PA");
        write_data(&mut out, b"\x02progress\n");
        write_data(&mut out, b"\x01CK");
        write_flush(&mut out);
        let mut data = Vec::new();
        SideBand::new(PktReader::new(&out[..]))
            .read_to_end(&mut data)
            .unwrap();
        assert_eq!(data, b"PACK");

        let mut out = Vec::new();
        write_data(&mut out, b"\x01PA");
        write_data(&mut out, b"\x03upload-pack: out of memory\n");
        let err = SideBand::new(PktReader::new(&out[..]))
            .read_to_end(&mut Vec::new())
            .unwrap_err();
        assert_eq!(err.to_string(), "server said: upload-pack: out of memory");
    }
}
