//! Envelope encryption: master key → workspace keys → per-version data keys.
//!
//! A 32-byte master key wraps one random workspace key per workspace. Each
//! secret version is sealed under its own data key, derived with HKDF-SHA256
//! from the workspace key and the version's ids, so rotating the master key
//! only rewraps workspace keys. Every blob is AES-256-GCM with a random 96-bit
//! nonce and AAD that binds the blob to its row: a ciphertext copied to another
//! version, secret or workspace fails to open.
//!
//! Exact construction (frozen by `frozen_vectors_still_open`; change it only with a new format byte):
//! - `ctx(label, ids…)` = `0x01 ‖ for each of label, ids…: u64 big-endian byte length ‖ bytes`;
//! - wrap key = HKDF-SHA256(ikm = master, no salt, info = `ragnos-vault/wrap/v1`), AAD = `ctx("ragnos-vault/wrap/v1", workspace_id)`;
//! - value key = HKDF-SHA256(master, info = `ragnos-vault/value/v1`), AAD = `ctx("ragnos-vault/value/v1", purpose, context)`;
//! - purpose keys (e.g. the REST API's JWT signing key) = HKDF-SHA256(master, info = `ctx("ragnos-vault/purpose/v1", purpose)`);
//! - data key = HKDF-SHA256(workspace key, info = `ctx("ragnos-vault/data/v1", workspace_id, secret_id, version_id)`),
//!   AAD = `ctx("ragnos-vault/version/v1", workspace_id, secret_id, version_id)`;
//! - blob = `0x01 ‖ nonce (12) ‖ ciphertext ‖ tag (16)`; the leading format byte is inside every AAD too.

use std::fmt;
use std::fs::OpenOptions;
use std::io::{self, Write};
use std::path::Path;

use aes_gcm::aead::{AeadInOut, KeyInit};
use aes_gcm::{Aes256Gcm, Key};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use hkdf::Hkdf;
use hmac::{Hmac, Mac};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;
use zeroize::Zeroizing;

/// Length of every key in this module (AES-256, HKDF-SHA256 output).
const KEY_LEN: usize = 32;
/// AES-GCM's standard 96-bit nonce.
const NONCE_LEN: usize = 12;
/// AES-GCM's full 128-bit tag.
const TAG_LEN: usize = 16;
/// First byte of every sealed blob; bump it when the layout or derivation changes.
const FORMAT_V1: u8 = 1;
/// Header bytes in front of the ciphertext.
const HEADER_LEN: usize = 1 + NONCE_LEN;

// Domain-separation labels: each key and AAD has its own, so a blob sealed for
// one purpose can never be opened as another.
const WRAP_INFO: &str = "ragnos-vault/wrap/v1";
const VALUE_INFO: &str = "ragnos-vault/value/v1";
const DATA_INFO: &str = "ragnos-vault/data/v1";
const VERSION_AAD: &str = "ragnos-vault/version/v1";
const PURPOSE_INFO: &str = "ragnos-vault/purpose/v1";
const FINGERPRINT_MSG: &[u8] = b"ragnos-vault/fingerprint";

/// Errors of this module; no variant ever carries key or plaintext bytes.
#[derive(Debug, thiserror::Error)]
pub enum CryptoError {
    /// Key material was the wrong length or not valid base64 (reason only, never the input).
    #[error("invalid master key: {0}")]
    BadKey(&'static str),
    /// The blob is truncated or has an unknown format version.
    #[error("ciphertext is malformed (truncated or unknown format version)")]
    Malformed,
    /// Authentication failed: wrong key, tampered blob, or blob bound to other ids.
    #[error("decryption failed: wrong key, or the ciphertext was altered or moved")]
    Decrypt,
    /// Reading or writing the key file failed (the message names the path).
    #[error("master key file: {0}")]
    Io(#[from] io::Error),
}

/// The ids a version ciphertext is bound to.
#[derive(Debug, Clone, Copy)]
pub struct VersionAad<'a> {
    /// Owning workspace.
    pub workspace_id: &'a str,
    /// Owning secret (its stable id, not its name, so renames keep values readable).
    pub secret_id: &'a str,
    /// The version this value belongs to.
    pub version_id: &'a str,
}

/// The deployment's root key (32 bytes); wraps workspace keys and server-held secrets.
pub struct MasterKey {
    key: Zeroizing<[u8; KEY_LEN]>,
    // Derived once: opening an access key's secret happens on every SigV4 request.
    wrap: Aes256Gcm,
    value: Aes256Gcm,
}

impl MasterKey {
    /// Build from exactly 32 raw bytes.
    pub fn from_bytes(b: &[u8]) -> Result<Self, CryptoError> {
        let mut key = Zeroizing::new([0u8; KEY_LEN]);
        if b.len() != KEY_LEN {
            return Err(CryptoError::BadKey("expected exactly 32 bytes"));
        }
        key.copy_from_slice(b);
        Ok(Self::from_array(key))
    }

    /// Parse `VAULT_MASTER_KEY`: standard base64 of 32 bytes, surrounding whitespace ignored.
    pub fn from_base64(s: &str) -> Result<Self, CryptoError> {
        let s = s.trim();
        // 32 bytes are 44 base64 chars; refuse anything far off before decoding.
        if s.len() > 64 {
            return Err(CryptoError::BadKey("expected base64 of 32 bytes"));
        }
        let mut raw = Zeroizing::new(Vec::with_capacity(64));
        // The decoder's error names the offending byte, which is key material: drop it.
        STANDARD
            .decode_vec(s, &mut raw)
            .map_err(|_| CryptoError::BadKey("not valid standard base64"))?;
        Self::from_bytes(&raw)
    }

    /// A fresh key from the OS random number generator.
    pub fn generate() -> Self {
        let mut key = Zeroizing::new([0u8; KEY_LEN]);
        fill_random(&mut key[..]);
        Self::from_array(key)
    }

    /// Load a key file (raw 32 bytes or base64 text); if absent and `create` is true, generate one and write it with mode 0600 (create_new, fsync); return (key, created).
    pub fn load_or_create_file(path: &Path, create: bool) -> Result<(Self, bool), CryptoError> {
        match Self::read_file(path) {
            Err(CryptoError::Io(e)) if e.kind() == io::ErrorKind::NotFound && create => {}
            other => return other.map(|key| (key, false)),
        }
        let key = Self::generate();
        let mut options = OpenOptions::new();
        options.write(true).create_new(true);
        #[cfg(unix)]
        std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
        let mut file = match options.open(path) {
            Ok(file) => file,
            // Another process won the race: use its key, never overwrite it.
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {
                return Self::read_file(path).map(|key| (key, false));
            }
            Err(e) => return Err(path_error(path, e)),
        };
        let written = file
            .write_all(key.to_base64().as_bytes())
            .and_then(|()| file.write_all(b"\n"))
            .and_then(|()| file.sync_all())
            .and_then(|()| sync_parent_dir(path));
        if let Err(e) = written {
            // A half-written key file would fail every later start; remove it.
            let _ = std::fs::remove_file(path);
            return Err(path_error(path, e));
        }
        Ok((key, true))
    }

    /// Standard base64 of the raw key (for printing a generated key once).
    pub fn to_base64(&self) -> Zeroizing<String> {
        let mut out = Zeroizing::new(String::with_capacity(48));
        STANDARD.encode_string(&self.key[..], &mut out);
        out
    }

    /// Wrap a workspace key: AES-256-GCM under a key derived from the master key (HKDF, info "ragnos-vault/wrap/v1"), AAD binds workspace_id.
    pub fn wrap_workspace_key(&self, workspace_id: &str, key: &WorkspaceKey) -> Vec<u8> {
        seal_with(&self.wrap, &context(WRAP_INFO, &[workspace_id]), &key.0[..])
    }

    /// Unwrap a workspace key sealed by [`MasterKey::wrap_workspace_key`] for the same workspace.
    pub fn unwrap_workspace_key(
        &self,
        workspace_id: &str,
        wrapped: &[u8],
    ) -> Result<WorkspaceKey, CryptoError> {
        let raw = open_with(&self.wrap, &context(WRAP_INFO, &[workspace_id]), wrapped)?;
        let mut key = Zeroizing::new([0u8; KEY_LEN]);
        if raw.len() != KEY_LEN {
            return Err(CryptoError::Malformed);
        }
        key.copy_from_slice(&raw);
        Ok(WorkspaceKey(key))
    }

    /// Seal small server-held secrets that must be recoverable (an access key's secret, needed to verify SigV4), AAD = purpose + context (e.g. the access key id).
    pub fn seal_value(&self, purpose: &str, context_id: &str, plaintext: &[u8]) -> Vec<u8> {
        seal_with(
            &self.value,
            &context(VALUE_INFO, &[purpose, context_id]),
            plaintext,
        )
    }

    /// Open a blob from [`MasterKey::seal_value`] with the same purpose and context.
    pub fn open_value(
        &self,
        purpose: &str,
        context_id: &str,
        sealed: &[u8],
    ) -> Result<Zeroizing<Vec<u8>>, CryptoError> {
        open_with(
            &self.value,
            &context(VALUE_INFO, &[purpose, context_id]),
            sealed,
        )
    }

    /// A 32-byte key for one purpose (e.g. `jwt-hs256`), derived with HKDF so it is the same
    /// on every node sharing this master key and survives restarts without being stored.
    pub fn derive_purpose_key(&self, purpose: &str) -> Zeroizing<[u8; KEY_LEN]> {
        let mut okm = Zeroizing::new([0u8; KEY_LEN]);
        let info = context(PURPOSE_INFO, &[purpose]);
        // HKDF only refuses outputs longer than 255 hash blocks; 32 bytes is one.
        if Hkdf::<Sha256>::new(None, &self.key[..])
            .expand(&info, &mut okm[..])
            .is_err()
        {
            fatal("HKDF refused a 32-byte output");
        }
        okm
    }

    /// Short non-secret fingerprint (hex of HMAC-SHA256(key, "ragnos-vault/fingerprint") first 8 bytes) stored in the DB so start-up can detect a wrong master key with a clear error.
    pub fn fingerprint(&self) -> String {
        // HMAC zero-pads keys shorter than its 64-byte block (RFC 2104), so keying
        // with the padded block is exactly HMAC(key, ·) and needs no fallible call.
        let mut block = Zeroizing::new([0u8; 64]);
        block[..KEY_LEN].copy_from_slice(&self.key[..]);
        let mut mac = <Hmac<Sha256> as KeyInit>::new((&*block).into());
        mac.update(FINGERPRINT_MSG);
        to_hex(&mac.finalize().into_bytes()[..8])
    }

    fn from_array(key: Zeroizing<[u8; KEY_LEN]>) -> Self {
        let wrap = derive_cipher(&key[..], &[WRAP_INFO.as_bytes()]);
        let value = derive_cipher(&key[..], &[VALUE_INFO.as_bytes()]);
        Self { key, wrap, value }
    }

    fn read_file(path: &Path) -> Result<Self, CryptoError> {
        let contents = Zeroizing::new(std::fs::read(path).map_err(|e| path_error(path, e))?);
        if contents.len() == KEY_LEN {
            return Self::from_bytes(&contents);
        }
        let text = std::str::from_utf8(&contents)
            .map_err(|_| CryptoError::BadKey("key file must hold 32 raw bytes or their base64"))?;
        Self::from_base64(text)
    }
}

impl fmt::Debug for MasterKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("MasterKey([REDACTED])")
    }
}

/// A workspace's random key-encryption key (32 bytes); stored only wrapped by the master key.
#[derive(Clone)]
pub struct WorkspaceKey(Zeroizing<[u8; KEY_LEN]>);

impl WorkspaceKey {
    /// A fresh key from the OS random number generator.
    pub fn generate() -> Self {
        let mut key = Zeroizing::new([0u8; KEY_LEN]);
        fill_random(&mut key[..]);
        Self(key)
    }

    /// Seal a version's value under its own data key, bound to `ids`.
    pub fn seal(&self, ids: &VersionAad<'_>, plaintext: &[u8]) -> Vec<u8> {
        seal_with(&self.data_cipher(ids), &version_aad(ids), plaintext)
    }

    /// Open a version's value; fails unless `ids` match the ones it was sealed with.
    pub fn open(
        &self,
        ids: &VersionAad<'_>,
        sealed: &[u8],
    ) -> Result<Zeroizing<Vec<u8>>, CryptoError> {
        open_with(&self.data_cipher(ids), &version_aad(ids), sealed)
    }

    /// The data key of one version, for callers that open the same version many times.
    pub fn version_key(&self, ids: &VersionAad<'_>) -> VersionKey {
        VersionKey(self.data_cipher(ids))
    }

    // A key per version (HKDF, microseconds) keeps each key's message count at one,
    // so random 96-bit nonces are never near GCM's collision bound.
    fn data_cipher(&self, ids: &VersionAad<'_>) -> Aes256Gcm {
        let info = context(
            DATA_INFO,
            &[ids.workspace_id, ids.secret_id, ids.version_id],
        );
        derive_cipher(&self.0[..], &[&info])
    }
}

/// One version's data key, derived from its workspace key ([`WorkspaceKey::version_key`]).
///
/// Deriving it (HKDF) cost more than the AES-GCM decryption of a typical value; the engine
/// caches these so a hot read only decrypts. The cipher's key schedule is zeroized on drop.
pub struct VersionKey(Aes256Gcm);

impl VersionKey {
    /// [`WorkspaceKey::open`] with the key already derived; `ids` must be the ones it was
    /// derived for, and they are checked again as the ciphertext's associated data.
    pub fn open(
        &self,
        ids: &VersionAad<'_>,
        sealed: &[u8],
    ) -> Result<Zeroizing<Vec<u8>>, CryptoError> {
        open_with(&self.0, &version_aad(ids), sealed)
    }
}

impl fmt::Debug for VersionKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("VersionKey([REDACTED])")
    }
}

impl fmt::Debug for WorkspaceKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("WorkspaceKey([REDACTED])")
    }
}

/// Compare two byte strings in constant time (for MACs, signatures, tokens); lengths may leak.
pub fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.ct_eq(b).into()
}

/// `N` bytes from the OS random number generator.
pub fn random_bytes<const N: usize>() -> [u8; N] {
    let mut out = [0u8; N];
    fill_random(&mut out);
    out
}

/// Fill `buf` from the OS random number generator; aborts the process if the OS has none.
pub fn fill_random(buf: &mut [u8]) {
    // Without an RNG no key, nonce or password is safe to produce; stopping beats
    // handing out predictable values, and Linux's getrandom(2) does not fail in practice.
    if getrandom::fill(buf).is_err() {
        fatal("the operating system's random number generator failed");
    }
}

/// Lower-case hex SHA-256 of `data`.
pub fn sha256_hex(data: &[u8]) -> String {
    to_hex(&Sha256::digest(data))
}

/// Length-prefixed encoding of a domain label and ids, led by the format byte.
/// The prefixes make it injective: ("ab", "c") and ("a", "bc") differ.
fn context(domain: &str, parts: &[&str]) -> Vec<u8> {
    let len = 1 + [domain]
        .iter()
        .chain(parts)
        .map(|p| 8 + p.len())
        .sum::<usize>();
    let mut out = Vec::with_capacity(len);
    out.push(FORMAT_V1);
    for part in [domain].iter().chain(parts) {
        out.extend_from_slice(&(part.len() as u64).to_be_bytes());
        out.extend_from_slice(part.as_bytes());
    }
    out
}

fn version_aad(ids: &VersionAad<'_>) -> Vec<u8> {
    context(
        VERSION_AAD,
        &[ids.workspace_id, ids.secret_id, ids.version_id],
    )
}

/// HKDF-SHA256 (no salt: the input keys are already uniformly random) into an AES-256-GCM key.
fn derive_cipher(ikm: &[u8], info: &[&[u8]]) -> Aes256Gcm {
    let mut okm = Zeroizing::new([0u8; KEY_LEN]);
    // HKDF only refuses outputs longer than 255 hash blocks; 32 bytes is one.
    if Hkdf::<Sha256>::new(None, ikm)
        .expand_multi_info(info, &mut okm[..])
        .is_err()
    {
        fatal("HKDF refused a 32-byte output");
    }
    let key: &Key<Aes256Gcm> = (&*okm).into();
    Aes256Gcm::new(key)
}

fn seal_with(cipher: &Aes256Gcm, aad: &[u8], plaintext: &[u8]) -> Vec<u8> {
    let nonce: [u8; NONCE_LEN] = random_bytes();
    // Sized up front so the buffer never reallocates and leaves plaintext copies behind.
    let mut out = Vec::with_capacity(HEADER_LEN + plaintext.len() + TAG_LEN);
    out.push(FORMAT_V1);
    out.extend_from_slice(&nonce);
    out.extend_from_slice(plaintext);
    // GCM only refuses messages over 64 GiB; values are capped at 64 KiB long before here.
    let Ok(tag) =
        cipher.encrypt_inout_detached((&nonce).into(), aad, (&mut out[HEADER_LEN..]).into())
    else {
        fatal("AES-GCM refused a message over 64 GiB")
    };
    out.extend_from_slice(&tag);
    out
}

fn open_with(
    cipher: &Aes256Gcm,
    aad: &[u8],
    sealed: &[u8],
) -> Result<Zeroizing<Vec<u8>>, CryptoError> {
    if sealed.len() < HEADER_LEN + TAG_LEN || sealed[0] != FORMAT_V1 {
        return Err(CryptoError::Malformed);
    }
    let (header, body) = sealed.split_at(HEADER_LEN);
    let (ciphertext, tag) = body.split_at(body.len() - TAG_LEN);
    let nonce: &[u8; NONCE_LEN] = header[1..].try_into().map_err(|_| CryptoError::Malformed)?;
    let tag: &[u8; TAG_LEN] = tag.try_into().map_err(|_| CryptoError::Malformed)?;
    let mut plaintext = Zeroizing::new(ciphertext.to_vec());
    cipher
        .decrypt_inout_detached(nonce.into(), aad, (&mut plaintext[..]).into(), tag.into())
        .map_err(|_| CryptoError::Decrypt)?;
    Ok(plaintext)
}

fn to_hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut out = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        out.push(char::from(DIGITS[usize::from(b >> 4)]));
        out.push(char::from(DIGITS[usize::from(b & 0x0f)]));
    }
    out
}

/// Name the path in an I/O error while keeping its kind (callers match on NotFound).
fn path_error(path: &Path, e: io::Error) -> CryptoError {
    CryptoError::Io(io::Error::new(e.kind(), format!("{}: {e}", path.display())))
}

/// fsync the directory so the new key file's name survives a crash, not just its bytes.
fn sync_parent_dir(path: &Path) -> io::Result<()> {
    #[cfg(unix)]
    {
        let parent = match path.parent() {
            Some(p) if !p.as_os_str().is_empty() => p,
            _ => Path::new("."),
        };
        std::fs::File::open(parent)?.sync_all()?;
    }
    // Elsewhere directories cannot be opened for fsync; the file's own sync_all stands.
    #[cfg(not(unix))]
    let _ = path;
    Ok(())
}

/// Stop the process on a failure that leaves no safe way to continue.
fn fatal(what: &str) -> ! {
    eprintln!("ragnos-vault: fatal crypto error: {what}");
    std::process::abort()
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;

    const IDS: VersionAad<'static> = VersionAad {
        workspace_id: "ws-1",
        secret_id: "sec-1",
        version_id: "ver-1",
    };

    fn flips_all_fail(sealed: &[u8], open: impl Fn(&[u8]) -> bool) {
        for bit in 0..sealed.len() * 8 {
            let mut tampered = sealed.to_vec();
            tampered[bit / 8] ^= 1 << (bit % 8);
            assert!(!open(&tampered), "bit {bit} flip was accepted");
        }
    }

    #[test]
    fn round_trips_small_large_and_binary() {
        let wk = WorkspaceKey::generate();
        let binary: Vec<u8> = (0..=255u8).cycle().take(1000).collect();
        let large = vec![0xA5u8; 64 * 1024];
        for plaintext in [&b"x"[..], &b""[..], &binary, &large] {
            let sealed = wk.seal(&IDS, plaintext);
            assert_eq!(sealed.len(), HEADER_LEN + plaintext.len() + TAG_LEN);
            assert_eq!(sealed[0], FORMAT_V1);
            assert_eq!(&wk.open(&IDS, &sealed).unwrap()[..], plaintext);
        }
    }

    #[test]
    fn a_derived_version_key_opens_what_the_workspace_key_sealed() {
        let wk = WorkspaceKey::generate();
        let sealed = wk.seal(&IDS, b"hunter2");
        let vk = wk.version_key(&IDS);
        assert_eq!(&vk.open(&IDS, &sealed).unwrap()[..], b"hunter2");
        // Derived for other ids, it opens nothing sealed for these (and the other way round).
        let other = VersionAad {
            version_id: "ver-2",
            ..IDS
        };
        assert!(wk.version_key(&other).open(&IDS, &sealed).is_err());
        assert!(vk.open(&other, &sealed).is_err());
        assert!(
            WorkspaceKey::generate()
                .version_key(&IDS)
                .open(&IDS, &sealed)
                .is_err()
        );
        flips_all_fail(&sealed, |b| vk.open(&IDS, b).is_ok());
        assert_eq!(format!("{vk:?}"), "VersionKey([REDACTED])");
    }

    #[test]
    fn version_blob_is_bound_to_its_ids() {
        let wk = WorkspaceKey::generate();
        let sealed = wk.seal(&IDS, b"hunter2");
        for other in [
            VersionAad {
                workspace_id: "ws-2",
                ..IDS
            },
            VersionAad {
                secret_id: "sec-2",
                ..IDS
            },
            VersionAad {
                version_id: "ver-2",
                ..IDS
            },
            // Same concatenation, different split: length prefixes must tell them apart.
            VersionAad {
                workspace_id: "ws-1s",
                secret_id: "ec-1",
                version_id: "ver-1",
            },
            VersionAad {
                workspace_id: "ws-1",
                secret_id: "sec-1ver-1",
                version_id: "",
            },
        ] {
            assert!(
                matches!(wk.open(&other, &sealed), Err(CryptoError::Decrypt)),
                "{other:?}"
            );
        }
        assert!(WorkspaceKey::generate().open(&IDS, &sealed).is_err());
    }

    #[test]
    fn context_encoding_is_injective() {
        assert_ne!(context("d", &["ab", "c"]), context("d", &["a", "bc"]));
        assert_ne!(context("d", &["a", ""]), context("d", &["a"]));
    }

    #[test]
    fn wrapped_key_is_bound_to_workspace_and_master_key() {
        let mk = MasterKey::generate();
        let wk = WorkspaceKey::generate();
        let wrapped = mk.wrap_workspace_key("ws-1", &wk);
        assert_eq!(wrapped.len(), HEADER_LEN + KEY_LEN + TAG_LEN);
        let back = mk.unwrap_workspace_key("ws-1", &wrapped).unwrap();
        assert_eq!(&back.0[..], &wk.0[..]);
        // The unwrapped key opens what the original sealed.
        assert_eq!(&back.open(&IDS, &wk.seal(&IDS, b"v")).unwrap()[..], b"v");
        assert!(matches!(
            mk.unwrap_workspace_key("ws-2", &wrapped),
            Err(CryptoError::Decrypt)
        ));
        assert!(
            MasterKey::generate()
                .unwrap_workspace_key("ws-1", &wrapped)
                .is_err()
        );
        // Domain separation: a wrapped key is not an openable value and vice versa.
        assert!(mk.open_value(WRAP_INFO, "ws-1", &wrapped).is_err());
    }

    #[test]
    fn sealed_values_bind_purpose_and_context() {
        let mk = MasterKey::generate();
        let sealed = mk.seal_value("access-key", "AKIDEXAMPLE", b"secret-access-key");
        assert_eq!(
            &mk.open_value("access-key", "AKIDEXAMPLE", &sealed).unwrap()[..],
            b"secret-access-key"
        );
        assert!(mk.open_value("access-key", "AKIDOTHER", &sealed).is_err());
        assert!(mk.open_value("webhook", "AKIDEXAMPLE", &sealed).is_err());
        assert!(mk.open_value("access-keyAKID", "EXAMPLE", &sealed).is_err());
        assert!(
            MasterKey::generate()
                .open_value("access-key", "AKIDEXAMPLE", &sealed)
                .is_err()
        );
        assert!(mk.unwrap_workspace_key("AKIDEXAMPLE", &sealed).is_err());
    }

    #[test]
    fn every_single_bit_flip_is_rejected() {
        let mk = MasterKey::generate();
        let wk = WorkspaceKey::generate();
        flips_all_fail(&wk.seal(&IDS, b"tiny!"), |b| wk.open(&IDS, b).is_ok());
        flips_all_fail(&mk.wrap_workspace_key("ws-1", &wk), |b| {
            mk.unwrap_workspace_key("ws-1", b).is_ok()
        });
        flips_all_fail(&mk.seal_value("p", "c", b"ab"), |b| {
            mk.open_value("p", "c", b).is_ok()
        });
    }

    #[test]
    fn truncated_and_garbage_blobs_fail_without_panic() {
        let wk = WorkspaceKey::generate();
        let sealed = wk.seal(&IDS, b"some value");
        for len in 0..sealed.len() {
            assert!(
                wk.open(&IDS, &sealed[..len]).is_err(),
                "prefix of {len} bytes accepted"
            );
        }
        let mut longer = sealed.clone();
        longer.push(0);
        assert!(wk.open(&IDS, &longer).is_err());
        let mut bad_version = sealed;
        bad_version[0] = 2;
        assert!(matches!(
            wk.open(&IDS, &bad_version),
            Err(CryptoError::Malformed)
        ));
        assert!(
            MasterKey::generate()
                .unwrap_workspace_key("ws", &[1u8; 29])
                .is_err()
        );
    }

    #[test]
    fn nonces_are_random() {
        let wk = WorkspaceKey::generate();
        let (a, b) = (wk.seal(&IDS, b"same"), wk.seal(&IDS, b"same"));
        assert_ne!(a, b);
        assert_ne!(a[1..HEADER_LEN], b[1..HEADER_LEN]);
    }

    #[test]
    fn master_key_parsing() {
        let mk = MasterKey::generate();
        let b64 = mk.to_base64();
        assert_eq!(b64.len(), 44);
        let again = MasterKey::from_base64(&format!("  {}\n", &*b64)).unwrap();
        assert_eq!(again.fingerprint(), mk.fingerprint());
        assert_eq!(
            MasterKey::from_bytes(&mk.key[..]).unwrap().fingerprint(),
            mk.fingerprint()
        );
        for bad in [
            "",
            "not base64!!",
            "AAAA",
            &STANDARD.encode([7u8; 31]),
            &STANDARD.encode([7u8; 33]),
            &"A".repeat(1000),
        ] {
            assert!(
                matches!(MasterKey::from_base64(bad), Err(CryptoError::BadKey(_))),
                "{bad:?}"
            );
        }
        assert!(matches!(
            MasterKey::from_bytes(&[0u8; 31]),
            Err(CryptoError::BadKey(_))
        ));
        assert!(matches!(
            MasterKey::from_bytes(&[0u8; 33]),
            Err(CryptoError::BadKey(_))
        ));
        // The decoder's own message would quote the offending symbol; ours must not.
        let err =
            MasterKey::from_base64("AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA?=").unwrap_err();
        assert!(
            !err.to_string().contains('?') && !err.to_string().contains("63"),
            "{err}"
        );
    }

    #[test]
    fn fingerprint_is_hmac_of_label() {
        let mk = MasterKey::from_bytes(&[0x0bu8; 32]).unwrap();
        let mut mac = <Hmac<Sha256> as KeyInit>::new_from_slice(&[0x0bu8; 32]).unwrap();
        mac.update(FINGERPRINT_MSG);
        assert_eq!(mk.fingerprint(), to_hex(&mac.finalize().into_bytes()[..8]));
        assert_eq!(mk.fingerprint().len(), 16);
        assert_ne!(mk.fingerprint(), MasterKey::generate().fingerprint());
    }

    #[cfg(unix)]
    #[test]
    fn key_file_is_created_0600_and_reloads() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("master.key");
        assert!(matches!(
            MasterKey::load_or_create_file(&path, false),
            Err(CryptoError::Io(e)) if e.kind() == io::ErrorKind::NotFound
        ));
        let (created, was_created) = MasterKey::load_or_create_file(&path, true).unwrap();
        assert!(was_created);
        assert_eq!(
            std::fs::metadata(&path).unwrap().permissions().mode() & 0o777,
            0o600
        );
        let (loaded, was_created) = MasterKey::load_or_create_file(&path, true).unwrap();
        assert!(!was_created);
        assert_eq!(loaded.fingerprint(), created.fingerprint());
        // Raw 32-byte files are accepted as well.
        let raw = dir.path().join("raw.key");
        std::fs::write(&raw, [9u8; 32]).unwrap();
        let (from_raw, _) = MasterKey::load_or_create_file(&raw, false).unwrap();
        assert_eq!(
            from_raw.fingerprint(),
            MasterKey::from_bytes(&[9u8; 32]).unwrap().fingerprint()
        );
        std::fs::write(&raw, b"garbage").unwrap();
        assert!(matches!(
            MasterKey::load_or_create_file(&raw, true),
            Err(CryptoError::BadKey(_))
        ));
        // A missing directory is an I/O error naming the path, not a panic.
        let err =
            MasterKey::load_or_create_file(&dir.path().join("no/such/dir/key"), true).unwrap_err();
        assert!(err.to_string().contains("no/such/dir"), "{err}");
    }

    #[test]
    fn debug_output_is_redacted() {
        let bytes = [0x42u8; 32];
        let mk = MasterKey::from_bytes(&bytes).unwrap();
        let wk = mk
            .unwrap_workspace_key(
                "ws",
                &mk.wrap_workspace_key("ws", &WorkspaceKey(Zeroizing::new(bytes))),
            )
            .unwrap();
        for shown in [format!("{mk:?}"), format!("{mk:#?}"), format!("{wk:?}")] {
            assert!(shown.contains("[REDACTED]"), "{shown}");
            assert!(
                !shown.contains("66") && !shown.contains("42") && !shown.contains(&*mk.to_base64()),
                "{shown}"
            );
        }
    }

    /// Blobs sealed by this code once, checked against an independent implementation
    /// (Python `cryptography`). Stored data must stay readable: never change these.
    #[test]
    fn frozen_vectors_still_open() {
        let hex = |s: &str| {
            (0..s.len())
                .step_by(2)
                .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
                .collect::<Vec<u8>>()
        };
        let mk = MasterKey::from_bytes(&[1u8; 32]).unwrap();
        assert_eq!(mk.fingerprint(), "0752312d6757573a");
        let wrapped = hex(
            "011aba10b169fe429a5ef23002b88fc31944da13e98a098c6b079c14083cc73c752f428720be744774f22b1d3fc6514ee88ec0cdb89bc591c35a18b5e2",
        );
        let wk = mk.unwrap_workspace_key("ws-1", &wrapped).unwrap();
        assert_eq!(&wk.0[..], &[2u8; 32]);
        let version =
            hex("0143f68e38c305977df7905a55c8ff02c7851e7f28509ac4d4e7072c676cd0aa8bc7f7fd");
        assert_eq!(&wk.open(&IDS, &version).unwrap()[..], b"hunter2");
        let value = hex(
            "01b3896a9b03f405279feb8ee9826d6caa47b6f9a7764d5c63dd8eef116bce8abc16cc78db41d3483760",
        );
        assert_eq!(
            &mk.open_value("access-key", "AKIDEXAMPLE", &value).unwrap()[..],
            b"wJalrXUtnFEMI"
        );
    }

    #[test]
    fn key_types_zeroize_and_share_across_threads() {
        fn zeroize_on_drop<T: zeroize::ZeroizeOnDrop>() {}
        fn send_sync<T: Send + Sync>() {}
        zeroize_on_drop::<Aes256Gcm>();
        zeroize_on_drop::<Zeroizing<[u8; KEY_LEN]>>();
        send_sync::<MasterKey>();
        send_sync::<WorkspaceKey>();
    }

    #[test]
    fn helpers() {
        assert!(constant_time_eq(b"abc", b"abc"));
        assert!(!constant_time_eq(b"abc", b"abd"));
        assert!(!constant_time_eq(b"abc", b"abcd"));
        assert_ne!(random_bytes::<16>(), random_bytes::<16>());
        assert_eq!(
            sha256_hex(b"abc"),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }
}
