//! Packfile decoding (`gitformat-pack`), streaming from a file. In: a pack in any
//! `Read + Seek` (the downloaded temporary file). Out: objects by id, each id
//! recomputed from its content. Opening verifies the trailer, walks every entry once
//! (inflating to find its end and hashing base objects), then resolves OFS_DELTA and
//! REF_DELTA chains. Memory holds offsets and ids, the object being rebuilt and a
//! small cache of delta bases, never the pack. What can go wrong: truncation, a bad
//! trailer, corrupt zlib, sizes that lie, hostile deltas, a missing (thin) base.

use std::collections::{HashMap, VecDeque};
use std::io::{self, BufRead, BufReader, Read, Seek, SeekFrom, Write};
use std::rc::Rc;

use flate2::bufread::ZlibDecoder;
use sha1_checked::{Digest, Sha1};

use super::GitError;
use super::delta;
use super::object::{IdHasher, Kind, ObjectId, object_id};

/// Bytes of resolved objects kept to rebuild delta chains without re-inflating.
const DELTA_CACHE_BYTES: usize = 32 << 20;
/// Longer chains than git ever writes (its default limit is 50, maximum 4095).
const MAX_CHAIN: usize = 10_000;
const IO_BUF: usize = 64 << 10;

/// A rebuilt object: its kind and shared content.
type Object = (Kind, Rc<Vec<u8>>);

#[derive(Clone, Copy, Debug)]
enum Raw {
    Base(Kind),
    Ofs(u64),
    Ref(ObjectId),
}

#[derive(Debug)]
struct Entry {
    offset: u64,
    data: u64,
    size: u64,
    raw: Raw,
    kind: Option<Kind>,
}

/// A verified pack with every object id known.
pub struct Pack<R> {
    file: R,
    entries: Vec<Entry>,
    by_id: HashMap<ObjectId, usize>,
    cache: Cache,
    max_object: u64,
}

impl<R: Read + Seek> Pack<R> {
    /// Verifies and indexes the pack. `max_object` bounds every object and delta.
    pub fn open(mut file: R, max_object: u64) -> Result<Self, GitError> {
        let len = file.seek(SeekFrom::End(0)).map_err(GitError::Io)?;
        if len < 32 {
            return Err(GitError::Pack("shorter than a header and trailer"));
        }
        verify_trailer(&mut file, len)?;
        file.seek(SeekFrom::Start(0)).map_err(GitError::Io)?;
        let end = len - 20;
        let mut rd = Counting {
            inner: BufReader::with_capacity(IO_BUF, &mut file),
            pos: 0,
        };
        let mut head = [0u8; 12];
        rd.read_exact(&mut head).map_err(GitError::from_io)?;
        if &head[..4] != b"PACK" {
            return Err(GitError::Pack("missing PACK signature"));
        }
        let version = u32::from_be_bytes([head[4], head[5], head[6], head[7]]);
        if version != 2 && version != 3 {
            return Err(GitError::Pack("unsupported version"));
        }
        let count = u32::from_be_bytes([head[8], head[9], head[10], head[11]]) as usize;
        // Each entry takes at least a header byte and a zlib stream: the length bounds
        // what a lying count may make us reserve.
        let mut entries = Vec::with_capacity(count.min((len / 8) as usize));
        let mut by_id = HashMap::with_capacity(entries.capacity());
        for _ in 0..count {
            let offset = rd.pos;
            if offset >= end {
                return Err(GitError::Pack("fewer objects than its header declares"));
            }
            let entry = read_entry(&mut rd, offset, max_object).map_err(|e| e.at(offset))?;
            if let (Raw::Base(_), Some(id)) = (entry.0.raw, entry.1) {
                by_id.insert(id, entries.len());
            }
            entries.push(entry.0);
        }
        if rd.pos != end {
            return Err(GitError::Pack("bytes after the last object"));
        }
        drop(rd);
        let mut pack = Pack {
            file,
            entries,
            by_id,
            cache: Cache::default(),
            max_object,
        };
        pack.resolve_deltas()?;
        Ok(pack)
    }

    /// Number of objects in the pack.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Every object id in the pack.
    pub fn ids(&self) -> impl Iterator<Item = ObjectId> + '_ {
        self.by_id.keys().copied()
    }

    /// The kind of an object, if the pack holds it.
    pub fn kind(&self, id: &ObjectId) -> Option<Kind> {
        self.by_id.get(id).and_then(|&i| self.entries[i].kind)
    }

    /// Reads a whole object, checking its kind.
    pub fn read(&mut self, id: &ObjectId, expected: Kind) -> Result<Rc<Vec<u8>>, GitError> {
        let &idx = self.by_id.get(id).ok_or(GitError::MissingObject(*id))?;
        let (kind, data) = self.materialize(idx)?.ok_or(GitError::MissingObject(*id))?;
        if kind != expected {
            return Err(GitError::WrongKind {
                id: *id,
                expected,
                actual: kind,
            });
        }
        Ok(data)
    }

    /// Writes a blob to `out`, streaming it when it is stored whole. Returns its size.
    pub fn write_blob(&mut self, id: &ObjectId, out: &mut impl Write) -> Result<u64, GitError> {
        let &idx = self.by_id.get(id).ok_or(GitError::MissingObject(*id))?;
        let entry = &self.entries[idx];
        if let Raw::Base(kind) = entry.raw {
            if kind != Kind::Blob {
                return Err(GitError::WrongKind {
                    id: *id,
                    expected: Kind::Blob,
                    actual: kind,
                });
            }
            let (data, size, offset) = (entry.data, entry.size, entry.offset);
            self.file
                .seek(SeekFrom::Start(data))
                .map_err(GitError::Io)?;
            let mut z = ZlibDecoder::new(BufReader::with_capacity(IO_BUF, &mut self.file));
            let n = io::copy(&mut (&mut z).take(size), out).map_err(GitError::from_io)?;
            if n != size {
                return Err(GitError::SizeMismatch {
                    declared: size,
                    actual: n,
                }
                .at(offset));
            }
            return Ok(n);
        }
        let data = self.read(id, Kind::Blob)?;
        out.write_all(&data).map_err(GitError::Io)?;
        Ok(data.len() as u64)
    }

    /// Rebuilds every delta, records its kind and id. REF_DELTA bases may come later in
    /// the pack, so unresolved entries wait for another round; a round without progress
    /// means a base is missing (a thin pack) or the references form a cycle.
    fn resolve_deltas(&mut self) -> Result<(), GitError> {
        let mut pending: Vec<usize> = (0..self.entries.len())
            .filter(|&i| !matches!(self.entries[i].raw, Raw::Base(_)))
            .collect();
        while !pending.is_empty() {
            let before = pending.len();
            let mut waiting = Vec::new();
            for idx in pending {
                let offset = self.entries[idx].offset;
                match self.materialize(idx).map_err(|e| e.at(offset))? {
                    Some((kind, data)) => {
                        let id = object_id(kind, &data)?;
                        self.entries[idx].kind = Some(kind);
                        self.by_id.insert(id, idx);
                    }
                    None => waiting.push(idx),
                }
            }
            if waiting.len() == before {
                let missing = waiting.iter().find_map(|&i| match self.entries[i].raw {
                    Raw::Ref(id) if !self.by_id.contains_key(&id) => Some(id),
                    _ => None,
                });
                return Err(match missing {
                    Some(id) => GitError::MissingObject(id),
                    None => GitError::Pack("unresolvable delta chain"),
                });
            }
            pending = waiting;
        }
        Ok(())
    }

    /// The content of entry `idx`, following its delta chain; `None` while a REF_DELTA
    /// base in the chain is not yet known.
    fn materialize(&mut self, idx: usize) -> Result<Option<Object>, GitError> {
        let mut chain = Vec::new();
        let mut cur = idx;
        let (kind, mut data) = loop {
            if let (Some(data), Some(kind)) = (self.cache.get(cur), self.entries[cur].kind) {
                break (kind, data);
            }
            match self.entries[cur].raw {
                Raw::Base(kind) => break (kind, Rc::new(self.inflate(cur)?)),
                Raw::Ofs(base) => {
                    chain.push(cur);
                    cur = self
                        .entries
                        .binary_search_by_key(&base, |e| e.offset)
                        .map_err(|_| GitError::Pack("OFS_DELTA base is not an entry"))?;
                }
                Raw::Ref(id) => {
                    chain.push(cur);
                    match self.by_id.get(&id) {
                        Some(&base) if self.entries[base].kind.is_some() => cur = base,
                        _ => return Ok(None),
                    }
                }
            }
            if chain.len() > MAX_CHAIN {
                return Err(GitError::Pack("delta chain too long"));
            }
        };
        for &d in chain.iter().rev() {
            let instructions = self.inflate(d)?;
            let offset = self.entries[d].offset;
            let out =
                delta::apply(&data, &instructions, self.max_object).map_err(|e| e.at(offset))?;
            data = Rc::new(out);
            self.cache.put(d, &data);
        }
        Ok(Some((kind, data)))
    }

    fn inflate(&mut self, idx: usize) -> Result<Vec<u8>, GitError> {
        let Entry {
            offset, data, size, ..
        } = self.entries[idx];
        self.file
            .seek(SeekFrom::Start(data))
            .map_err(GitError::Io)?;
        let mut z = ZlibDecoder::new(BufReader::with_capacity(IO_BUF, &mut self.file));
        // `size` was checked against `max_object` when the entry was read.
        let mut out = Vec::with_capacity(size as usize);
        (&mut z)
            .take(size)
            .read_to_end(&mut out)
            .map_err(|_| GitError::Zlib.at(offset))?;
        if out.len() as u64 != size {
            return Err(GitError::SizeMismatch {
                declared: size,
                actual: out.len() as u64,
            }
            .at(offset));
        }
        Ok(out)
    }
}

/// Reads one entry header and walks its zlib stream to its end, hashing base objects.
fn read_entry<B: BufRead>(
    rd: &mut Counting<B>,
    offset: u64,
    max_object: u64,
) -> Result<(Entry, Option<ObjectId>), GitError> {
    let mut byte = read_byte(rd)?;
    let code = (byte >> 4) & 7;
    let mut size = u64::from(byte & 0x0f);
    let mut shift = 4;
    while byte & 0x80 != 0 {
        byte = read_byte(rd)?;
        if shift > 57 {
            return Err(GitError::Pack("entry size overflows 64 bits"));
        }
        size |= u64::from(byte & 0x7f) << shift;
        shift += 7;
    }
    if size > max_object {
        return Err(GitError::ObjectTooLarge {
            size,
            max: max_object,
        });
    }
    let raw = match code {
        1 => Raw::Base(Kind::Commit),
        2 => Raw::Base(Kind::Tree),
        3 => Raw::Base(Kind::Blob),
        4 => Raw::Base(Kind::Tag),
        6 => {
            let mut b = read_byte(rd)?;
            let mut back = u64::from(b & 0x7f);
            while b & 0x80 != 0 {
                b = read_byte(rd)?;
                back = back
                    .checked_add(1)
                    .and_then(|v| v.checked_mul(128))
                    .ok_or(GitError::Pack("OFS_DELTA offset overflows"))?
                    | u64::from(b & 0x7f);
            }
            let base = offset
                .checked_sub(back)
                .filter(|_| back > 0)
                .ok_or(GitError::Pack("OFS_DELTA base outside the pack"))?;
            Raw::Ofs(base)
        }
        7 => {
            let mut id = [0u8; 20];
            rd.read_exact(&mut id).map_err(GitError::from_io)?;
            Raw::Ref(ObjectId(id))
        }
        t => return Err(GitError::UnknownType(t)),
    };
    let data = rd.pos;
    let mut hasher = match raw {
        Raw::Base(kind) => Some(IdHasher::new(kind, size)),
        _ => None,
    };
    let mut z = ZlibDecoder::new(&mut *rd);
    let mut buf = vec![0u8; IO_BUF];
    let mut total = 0u64;
    loop {
        let n = z.read(&mut buf).map_err(|e| match e.kind() {
            io::ErrorKind::UnexpectedEof => GitError::Truncated("pack"),
            _ => GitError::Zlib,
        })?;
        if n == 0 {
            break;
        }
        total += n as u64;
        if total > size {
            return Err(GitError::Oversize(size));
        }
        if let Some(h) = hasher.as_mut() {
            h.update(&buf[..n]);
        }
    }
    if total != size {
        return Err(GitError::SizeMismatch {
            declared: size,
            actual: total,
        });
    }
    let id = hasher.map(IdHasher::finish).transpose()?;
    let kind = match raw {
        Raw::Base(kind) => Some(kind),
        _ => None,
    };
    Ok((
        Entry {
            offset,
            data,
            size,
            raw,
            kind,
        },
        id,
    ))
}

fn read_byte(rd: &mut impl Read) -> Result<u8, GitError> {
    let mut b = [0u8; 1];
    rd.read_exact(&mut b).map_err(GitError::from_io)?;
    Ok(b[0])
}

/// Checks that the last 20 bytes are the SHA-1 of everything before them.
fn verify_trailer(file: &mut (impl Read + Seek), len: u64) -> Result<(), GitError> {
    file.seek(SeekFrom::Start(0)).map_err(GitError::Io)?;
    // The trailer guards against corruption, not attack (object ids do that), so
    // collision detection is not needed here and would triple the cost.
    let mut sha = Sha1::builder().detect_collision(false).build();
    let copied = io::copy(&mut (&mut *file).take(len - 20), &mut sha).map_err(GitError::Io)?;
    if copied != len - 20 {
        return Err(GitError::Truncated("pack"));
    }
    let mut trailer = [0u8; 20];
    file.read_exact(&mut trailer).map_err(GitError::from_io)?;
    if sha.finalize().as_slice() != trailer {
        return Err(GitError::Pack("trailer checksum mismatch"));
    }
    Ok(())
}

/// A `BufRead` that knows its absolute position, so entry offsets are exact even
/// though the zlib decoder reads ahead through the buffer.
struct Counting<B> {
    inner: B,
    pos: u64,
}

impl<B: BufRead> Read for Counting<B> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.pos += n as u64;
        Ok(n)
    }
}

impl<B: BufRead> BufRead for Counting<B> {
    fn fill_buf(&mut self) -> io::Result<&[u8]> {
        self.inner.fill_buf()
    }

    fn consume(&mut self, amt: usize) {
        self.inner.consume(amt);
        self.pos += amt as u64;
    }
}

/// Recently rebuilt objects by entry index, evicted oldest first past a byte budget.
#[derive(Default)]
struct Cache {
    map: HashMap<usize, Rc<Vec<u8>>>,
    order: VecDeque<usize>,
    bytes: usize,
}

impl Cache {
    fn get(&self, idx: usize) -> Option<Rc<Vec<u8>>> {
        self.map.get(&idx).cloned()
    }

    fn put(&mut self, idx: usize, data: &Rc<Vec<u8>>) {
        if data.len() > DELTA_CACHE_BYTES / 4 || self.map.contains_key(&idx) {
            return;
        }
        self.bytes += data.len();
        self.map.insert(idx, Rc::clone(data));
        self.order.push_back(idx);
        while self.bytes > DELTA_CACHE_BYTES {
            let Some(old) = self.order.pop_front() else {
                break;
            };
            if let Some(d) = self.map.remove(&old) {
                self.bytes -= d.len();
            }
        }
    }
}

#[cfg(test)]
#[path = "pack_tests.rs"]
mod tests;
