//! Mutation tests for the signature header extraction: any commit or tag bytes give
//! a split or `None`, never a panic, and a split payload never holds the signature.

use super::signature::{split_commit, split_tag};

#[test]
fn mutated_objects_split_or_not_but_never_panic() {
    let commit: &[u8] = b"tree 4b825dc642cb6eb9a060e54bf8d69288fbee4904\nparent 1111111111111111111111111111111111111111\nauthor A <a@e> 1700000000 +0000\ncommitter C <c@e> 1700000100 +0100\ngpgsig -----BEGIN SSH SIGNATURE-----\n U1NIU0lH\n -----END SSH SIGNATURE-----\n\nmessage\n";
    let tag: &[u8] = b"object 1111111111111111111111111111111111111111\ntype commit\ntag v1\ntagger T <t@e> 42 +0000\n\nmsg\n-----BEGIN PGP SIGNATURE-----\n\nabc\n-----END PGP SIGNATURE-----\n";
    let mut seed = 0x2545_f491_4f6c_dd1d_u64;
    let mut next = move || {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        seed
    };
    for base in [commit, tag] {
        for _ in 0..4000 {
            let mut data = base.to_vec();
            for _ in 0..=(next() % 4) {
                if data.is_empty() {
                    break;
                }
                let at = (next() as usize) % data.len();
                match next() % 4 {
                    0 => data[at] = [b'\n', b' ', b'-', b'>', b'g', 0][(next() % 6) as usize],
                    1 => {
                        data.remove(at);
                    }
                    2 => data.insert(at, b'\n'),
                    _ => data.truncate(at),
                }
            }
            if let Some(s) = split_commit(&data) {
                assert!(!s.signature.is_empty());
            }
            if let Some(s) = split_tag(&data) {
                assert_eq!([s.payload, s.signature].concat(), data);
            }
        }
    }
}
