//! Enrollment tokens: expiring, limited-use secrets an operator hands to new hosts.

use bannin_proto::TokenCreated;
use time::{Duration, OffsetDateTime};

use crate::secrets;
use crate::store::Store;

/// Creates a token; the clear text exists only in the return value.
pub fn create(store: &Store, ttl_secs: u64, uses: u32) -> Result<TokenCreated, String> {
    crate::api::validate_token_request(ttl_secs, uses)?;
    let token = secrets::new_token(secrets::ENROLL_PREFIX);
    let expires_at = OffsetDateTime::now_utc() + Duration::seconds(ttl_secs as i64);
    store
        .create_enroll_token(&secrets::hash(&token), expires_at, uses)
        .map_err(|e| format!("storing the token: {e:#}"))?;
    Ok(TokenCreated {
        token,
        expires_at,
        uses,
    })
}
