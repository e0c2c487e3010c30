//! Git delta application (`gitformat-pack`, "Deltified representation"). In: a base
//! object and delta instructions. Out: the reconstructed object. Sizes and copy ranges
//! are checked against the base and the declared result before any byte is copied, so
//! hostile deltas fail instead of panicking or allocating without bound.

use super::GitError;

/// Reads a little-endian base-128 size as used in delta headers.
pub fn read_size(data: &[u8], pos: &mut usize) -> Result<u64, GitError> {
    let mut value = 0u64;
    let mut shift = 0u32;
    loop {
        let byte = *data.get(*pos).ok_or(GitError::Delta("truncated size"))?;
        *pos += 1;
        if shift > 63 {
            return Err(GitError::Delta("size overflows 64 bits"));
        }
        value |= u64::from(byte & 0x7f) << shift;
        shift += 7;
        if byte & 0x80 == 0 {
            return Ok(value);
        }
    }
}

/// The result size a delta declares, read without applying it.
pub fn result_size(delta: &[u8]) -> Result<u64, GitError> {
    let mut pos = 0;
    read_size(delta, &mut pos)?;
    read_size(delta, &mut pos)
}

/// Applies `delta` to `base`. `max_size` bounds the declared result size.
pub fn apply(base: &[u8], delta: &[u8], max_size: u64) -> Result<Vec<u8>, GitError> {
    let mut pos = 0;
    let base_size = read_size(delta, &mut pos)?;
    if base_size != base.len() as u64 {
        return Err(GitError::Delta("base size does not match the base object"));
    }
    let size = read_size(delta, &mut pos)?;
    if size > max_size {
        return Err(GitError::ObjectTooLarge {
            size,
            max: max_size,
        });
    }
    // `size` is bounded by `max_size`, which fits in memory by configuration.
    let size = usize::try_from(size).map_err(|_| GitError::Delta("result size overflow"))?;
    let mut out = Vec::with_capacity(size);
    while pos < delta.len() {
        let cmd = delta[pos];
        pos += 1;
        if cmd & 0x80 != 0 {
            let mut offset = 0usize;
            let mut len = 0usize;
            for i in 0..4 {
                if cmd & (1 << i) != 0 {
                    let b = *delta.get(pos).ok_or(GitError::Delta("truncated copy"))?;
                    pos += 1;
                    offset |= usize::from(b) << (8 * i);
                }
            }
            for i in 0..3 {
                if cmd & (0x10 << i) != 0 {
                    let b = *delta.get(pos).ok_or(GitError::Delta("truncated copy"))?;
                    pos += 1;
                    len |= usize::from(b) << (8 * i);
                }
            }
            if len == 0 {
                len = 0x10000;
            }
            let end = offset
                .checked_add(len)
                .filter(|&end| end <= base.len())
                .ok_or(GitError::Delta("copy outside the base object"))?;
            if out.len() + len > size {
                return Err(GitError::Delta("copy past the declared result size"));
            }
            out.extend_from_slice(&base[offset..end]);
        } else if cmd != 0 {
            let len = usize::from(cmd);
            let data = delta
                .get(pos..pos + len)
                .ok_or(GitError::Delta("truncated insert"))?;
            if out.len() + len > size {
                return Err(GitError::Delta("insert past the declared result size"));
            }
            out.extend_from_slice(data);
            pos += len;
        } else {
            return Err(GitError::Delta("reserved instruction 0"));
        }
    }
    if out.len() != size {
        return Err(GitError::Delta("result shorter than its declared size"));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn delta(base_len: u8, result_len: u8, ops: &[u8]) -> Vec<u8> {
        let mut d = vec![base_len, result_len];
        d.extend(ops);
        d
    }

    #[test]
    fn copy_and_insert() {
        let base = b"hello world";
        // copy offset 6 len 5 ("world"), insert ", hi"
        let d = delta(11, 9, &[0x91, 6, 5, 4, b',', b' ', b'h', b'i']);
        assert_eq!(apply(base, &d, 100).unwrap(), b"world, hi");
        assert_eq!(result_size(&d).unwrap(), 9);
    }

    #[test]
    fn zero_length_copy_means_64k() {
        let base = vec![7u8; 0x10000];
        let mut d = Vec::new();
        d.extend([0x80, 0x80, 0x04]); // base size 65536
        d.extend([0x80, 0x80, 0x04]); // result size 65536
        d.push(0x80); // copy, offset 0, size 0 => 0x10000
        assert_eq!(apply(&base, &d, 1 << 20).unwrap(), base);
    }

    #[test]
    fn hostile_deltas_fail_cleanly() {
        let base = b"hello world";
        let cases: &[(&[u8], &str)] = &[
            (
                &[12, 5, 0x90, 5],
                "base size does not match the base object",
            ),
            (&[11, 5, 0x91, 10, 5], "copy outside the base object"),
            (&[11, 5, 0x91, 0xff, 0xff], "copy outside the base object"),
            (&[11, 2, 0x90, 5], "copy past the declared result size"),
            (
                &[11, 2, 3, b'a', b'b', b'c'],
                "insert past the declared result size",
            ),
            (&[11, 5, 4, b'a'], "truncated insert"),
            (&[11, 5, 0x91], "truncated copy"),
            (&[11, 5, 0], "reserved instruction 0"),
            (
                &[11, 5, 2, b'a', b'b'],
                "result shorter than its declared size",
            ),
            (&[11], "truncated size"),
        ];
        for (d, want) in cases {
            let err = apply(base, d, 100).unwrap_err().to_string();
            assert!(err.contains(want), "{d:?}: {err}");
        }
        let err = apply(base, &[11, 0xff, 0x7f], 100).unwrap_err();
        assert!(matches!(err, GitError::ObjectTooLarge { .. }), "{err}");
    }
}
