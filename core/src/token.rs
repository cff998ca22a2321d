//! Bearer tokens: made at random, stored in the config only as their SHA-256.
//!
//! A plain SHA-256 (not a slow password hash) is right here: tokens are 256 random bits, so
//! there is nothing to guess from a leaked hash, and checking one costs microseconds per request.

use sha2::{Digest, Sha256};

/// What every token starts with, so a token pasted into the wrong place is recognisable.
pub const TOKEN_PREFIX: &str = "msd_";

/// A fresh random token: [`TOKEN_PREFIX`] and 256 bits from the operating system, in hex.
pub fn new_token() -> std::io::Result<String> {
    let mut bytes = [0u8; 32];
    getrandom::fill(&mut bytes).map_err(|e| std::io::Error::other(e.to_string()))?;
    Ok(format!("{TOKEN_PREFIX}{}", hex(&bytes)))
}

/// The SHA-256 of a token, as the config stores it.
pub fn sha256(token: &str) -> [u8; 32] {
    Sha256::digest(token.as_bytes()).into()
}

/// Lower-case hex.
pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// 64 hex digits (either case) as 32 bytes.
pub fn parse_sha256_hex(text: &str) -> Option<[u8; 32]> {
    let text = text.trim();
    if text.len() != 64 || !text.is_ascii() {
        return None;
    }
    let mut out = [0u8; 32];
    for (i, byte) in out.iter_mut().enumerate() {
        *byte = u8::from_str_radix(&text[2 * i..2 * i + 2], 16).ok()?;
    }
    Some(out)
}

/// Compares two digests in time that does not depend on where they differ.
pub fn same_digest(a: &[u8; 32], b: &[u8; 32]) -> bool {
    let diff = a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y));
    std::hint::black_box(diff) == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_are_fresh_and_hash_round_trips() {
        let a = new_token().unwrap();
        let b = new_token().unwrap();
        assert_ne!(a, b);
        assert!(a.starts_with(TOKEN_PREFIX));
        assert_eq!(a.len(), TOKEN_PREFIX.len() + 64);
        let h = sha256(&a);
        assert_eq!(parse_sha256_hex(&hex(&h)), Some(h));
        assert_eq!(parse_sha256_hex(&hex(&h).to_uppercase()), Some(h));
        assert!(same_digest(&h, &sha256(&a)));
        assert!(!same_digest(&h, &sha256(&b)));
    }

    #[test]
    fn known_sha256() {
        // printf abc | sha256sum
        assert_eq!(
            hex(&sha256("abc")),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }

    #[test]
    fn bad_hashes_are_refused() {
        for bad in ["", "abc", &"g".repeat(64), &"0".repeat(63), &"é".repeat(32)] {
            assert_eq!(parse_sha256_hex(bad), None, "{bad:?}");
        }
    }
}
