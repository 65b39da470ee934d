//! The REST API's bearer tokens: HS256 JWTs with the seed RFC's claims.
//!
//! The signing key is derived from the master key with HKDF (purpose `jwt-hs256`), so it
//! is never stored, survives restarts, and is the same on every node sharing the master
//! key and database. Rotating the master key therefore logs every user out, which for
//! 15-minute tokens costs one login.
//!
//! Verification pins HS256 (no `none`, no key confusion), requires `iss`, `sub`, `aud`
//! and `exp`, and checks `exp` against the caller's `now` with no leeway: the issuer and
//! the verifier share a clock source closely enough. `aud` lists the workspaces the token
//! was issued for and is checked per request against the workspace in the path.

use crate::crypto::MasterKey;
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// The `iss` of every token.
pub const ISSUER: &str = "ragnos-vault";
/// Default token lifetime.
pub const DEFAULT_TTL_SECONDS: u64 = 15 * 60;

/// A member's rights in one workspace, as carried in the token.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WorkspaceGrant {
    /// `admin` | `write` | `read`.
    pub role: String,
    /// Secret-name prefixes; empty means every name.
    pub scopes: Vec<String>,
}

/// The claims of a REST token (seed RFC "JWT Token Structure").
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Claims {
    /// The user id.
    pub sub: String,
    /// Always [`ISSUER`].
    pub iss: String,
    /// Workspace ids the token was issued for.
    pub aud: Vec<String>,
    /// Rights per workspace id at issue time.
    pub workspaces: BTreeMap<String, WorkspaceGrant>,
    /// Expiry, epoch seconds.
    pub exp: u64,
    /// Issued at, epoch seconds.
    pub iat: u64,
}

/// Why a token was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TokenError {
    /// Malformed, wrong signature, wrong algorithm, wrong issuer or missing claims.
    Invalid,
    /// Past its `exp`.
    Expired,
}

/// Issues and verifies tokens.
pub struct JwtKeys {
    encoding: EncodingKey,
    decoding: DecodingKey,
    validation: Validation,
    /// Lifetime of issued tokens, seconds.
    pub ttl_seconds: u64,
}

impl std::fmt::Debug for JwtKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("JwtKeys")
            .field("ttl_seconds", &self.ttl_seconds)
            .finish_non_exhaustive()
    }
}

impl JwtKeys {
    /// Keys derived from the master key.
    pub fn from_master(master: &MasterKey, ttl_seconds: u64) -> Result<JwtKeys, String> {
        let secret = master.derive_purpose_key("jwt-hs256");
        Self::from_secret(&secret[..], ttl_seconds)
    }

    /// Keys from a raw HMAC secret.
    pub fn from_secret(secret: &[u8], ttl_seconds: u64) -> Result<JwtKeys, String> {
        let encoding = EncodingKey::from_secret(secret).map_err(|e| e.to_string())?;
        let decoding = DecodingKey::from_secret(secret).map_err(|e| e.to_string())?;
        let mut validation = Validation::new(Algorithm::HS256);
        validation.set_issuer(&[ISSUER]);
        validation.set_required_spec_claims(&["exp", "iss", "sub", "aud"]);
        // Expiry is checked in `verify` against the caller's clock, with no leeway.
        validation.validate_exp = false;
        validation.leeway = 0;
        // `aud` holds workspace ids; it is checked per request against the path.
        validation.validate_aud = false;
        Ok(JwtKeys {
            encoding,
            decoding,
            validation,
            ttl_seconds,
        })
    }

    /// Sign a token for `user_id` with `grants`, issued at `now` (epoch seconds).
    pub fn issue(
        &self,
        user_id: &str,
        grants: BTreeMap<String, WorkspaceGrant>,
        now: u64,
    ) -> Result<(String, Claims), String> {
        let claims = Claims {
            sub: user_id.to_string(),
            iss: ISSUER.to_string(),
            aud: grants.keys().cloned().collect(),
            workspaces: grants,
            exp: now + self.ttl_seconds,
            iat: now,
        };
        let token = jsonwebtoken::encode(&Header::new(Algorithm::HS256), &claims, &self.encoding)
            .map_err(|e| e.to_string())?;
        Ok((token, claims))
    }

    /// Verify a token's signature and claims at `now` (epoch seconds).
    pub fn verify(&self, token: &str, now: u64) -> Result<Claims, TokenError> {
        let data = jsonwebtoken::decode::<Claims>(token, &self.decoding, &self.validation)
            .map_err(|_| TokenError::Invalid)?;
        if data.claims.iss != ISSUER {
            return Err(TokenError::Invalid);
        }
        if data.claims.exp <= now {
            return Err(TokenError::Expired);
        }
        Ok(data.claims)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use base64::Engine as _;
    use base64::engine::general_purpose::URL_SAFE_NO_PAD;

    fn keys() -> JwtKeys {
        JwtKeys::from_secret(&[7u8; 32], 60).unwrap()
    }

    fn grants() -> BTreeMap<String, WorkspaceGrant> {
        let mut g = BTreeMap::new();
        g.insert(
            "ws-1".to_string(),
            WorkspaceGrant {
                role: "read".into(),
                scopes: vec!["app/".into()],
            },
        );
        g
    }

    #[test]
    fn round_trip_and_expiry() {
        let k = keys();
        let (token, claims) = k.issue("user-1", grants(), 1_000).unwrap();
        assert_eq!(claims.aud, vec!["ws-1".to_string()]);
        assert_eq!(claims.exp, 1_060);
        let back = k.verify(&token, 1_059).unwrap();
        assert_eq!(back, claims);
        assert_eq!(k.verify(&token, 1_060), Err(TokenError::Expired));
    }

    #[test]
    fn other_key_tampering_and_alg_none_fail() {
        let (token, _) = keys().issue("user-1", grants(), 1_000).unwrap();
        let other = JwtKeys::from_secret(&[8u8; 32], 60).unwrap();
        assert_eq!(other.verify(&token, 1_001), Err(TokenError::Invalid));
        // Swap the payload for one naming another user: the signature no longer matches.
        let parts: Vec<&str> = token.split('.').collect();
        let forged = URL_SAFE_NO_PAD.encode(
            br#"{"sub":"admin","iss":"ragnos-vault","aud":[],"workspaces":{},"exp":9999999999,"iat":1}"#,
        );
        let tampered = format!("{}.{}.{}", parts[0], forged, parts[2]);
        assert_eq!(keys().verify(&tampered, 1_001), Err(TokenError::Invalid));
        // alg: none with no signature.
        let none = format!(
            "{}.{}.",
            URL_SAFE_NO_PAD.encode(br#"{"alg":"none"}"#),
            forged
        );
        assert_eq!(keys().verify(&none, 1_001), Err(TokenError::Invalid));
        assert_eq!(
            keys().verify("not-a-token", 1_001),
            Err(TokenError::Invalid)
        );
    }

    #[test]
    fn wrong_issuer_fails() {
        let k = keys();
        let claims = Claims {
            sub: "u".into(),
            iss: "someone-else".into(),
            aud: vec![],
            workspaces: BTreeMap::new(),
            exp: 2_000,
            iat: 1_000,
        };
        let token =
            jsonwebtoken::encode(&Header::new(Algorithm::HS256), &claims, &k.encoding).unwrap();
        assert_eq!(k.verify(&token, 1_001), Err(TokenError::Invalid));
    }
}
