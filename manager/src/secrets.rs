//! Bearer secrets (admin and enrollment tokens). They are random 256-bit values, so a plain SHA-256 is
//! enough to store them: there is nothing to brute-force. Only hashes reach the database or the logs.

pub const ADMIN_PREFIX: &str = "bna_";
pub const ENROLL_PREFIX: &str = "bne_";

pub fn new_token(prefix: &str) -> String {
    format!("{prefix}{}", hex::encode(bannin_pki::random_bytes::<32>()))
}

pub fn hash(token: &str) -> String {
    bannin_pki::sha256_hex(token.trim().as_bytes())
}

#[cfg(test)]
mod tests {
    #[test]
    fn tokens_are_prefixed_unique_and_hash_ignoring_surrounding_whitespace() {
        let a = super::new_token(super::ADMIN_PREFIX);
        assert!(a.starts_with("bna_") && a.len() == 68);
        assert_ne!(a, super::new_token(super::ADMIN_PREFIX));
        assert_eq!(super::hash(&a), super::hash(&format!("{a}\n")));
    }
}
