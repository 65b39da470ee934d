//! AWS Signature Version 4 verification for `Authorization`-header requests.
//!
//! The check runs in two steps so that no secret is touched before it is needed:
//!
//! 1. [`parse`] reads `Authorization` and `X-Amz-Date` (or `Date`) and rejects everything that
//!    can be judged without a secret: the algorithm, the credential scope (service, date, region,
//!    terminator), the `SignedHeaders` list and the ±[`MAX_SKEW`] clock window. It yields an
//!    [`AuthHeader`] whose `access_key_id` the caller uses to look up the secret (an unknown key is
//!    the caller's `UnrecognizedClientException`).
//! 2. [`verify`] rebuilds the canonical request and the string to sign, and compares signatures in
//!    constant time with a [`SigningKey`]. That key depends only on (secret, date, region,
//!    service), so the server can derive it once per access key and day and cache it.
//!
//! The body hash is always computed here from the bytes received: the SDKs send no
//! `x-amz-content-sha256` for Secrets Manager, and trusting a client-supplied hash would let a
//! body be swapped under a valid signature.

use std::fmt;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use hmac::{Hmac, KeyInit, Mac};
use http::{HeaderMap, Method, Uri};
use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, percent_decode_str, percent_encode};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;
use zeroize::{Zeroize, ZeroizeOnDrop, Zeroizing};

/// The only signing algorithm accepted (SigV4a and SigV2 are not supported).
pub const ALGORITHM: &str = "AWS4-HMAC-SHA256";
/// How far the request time may be from the server clock, either way, as in AWS JSON services.
pub const MAX_SKEW: Duration = Duration::from_secs(300);
/// The fixed last element of a SigV4 credential scope.
const TERMINATOR: &str = "aws4_request";
/// Upper bound on the `Authorization` header we are willing to parse.
const MAX_AUTH_HEADER_LEN: usize = 16 * 1024;
/// RFC 3986 unreserved characters stay as they are; everything else is `%XX` (uppercase).
const UNRESERVED: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~');

type HmacSha256 = Hmac<Sha256>;

/// Why a request failed SigV4 authentication; each variant maps to an AWS error code.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SigV4Error {
    /// No `Authorization` header at all.
    #[error("Request is missing Authentication Token")]
    Missing,
    /// A malformed or incomplete `Authorization` header or date header; the text is AWS-style.
    #[error("{0}")]
    Incomplete(String),
    /// The request time is more than [`MAX_SKEW`] before the server clock.
    #[error("Signature expired: {amz_date} is now earlier than {earliest} ({now} - 5 min.)")]
    Expired {
        amz_date: String,
        earliest: String,
        now: String,
    },
    /// The request time is more than [`MAX_SKEW`] after the server clock.
    #[error("Signature not yet current: {amz_date} is still later than {latest} ({now} + 5 min.)")]
    NotYetCurrent {
        amz_date: String,
        latest: String,
        now: String,
    },
    /// The credential scope names another service.
    #[error("Credential should be scoped to correct service: '{expected}'. ")]
    WrongService { expected: String },
    /// The credential scope's region is empty or not a plausible region name.
    #[error("Credential should be scoped to a valid region, not '{0}'. ")]
    InvalidRegion(String),
    /// The credential scope does not end in `aws4_request`.
    #[error("Credential should be scoped with a valid terminator: 'aws4_request', not '{0}'. ")]
    WrongTerminator(String),
    /// The credential scope date is not the day of the request time.
    #[error(
        "Date in Credential scope does not match YYYYMMDD from ISO-8601 version of date from HTTP: '{scope_date}' != '{request_day}', from '{amz_date}'."
    )]
    DateMismatch {
        scope_date: String,
        request_day: String,
        amz_date: String,
    },
    /// The signature does not match the one computed from the request.
    #[error(
        "The request signature we calculated does not match the signature you provided. Check your AWS Secret Access Key and signing method. Consult the service documentation for details."
    )]
    Mismatch,
}

impl SigV4Error {
    /// The AWS error code (`__type`) for this failure.
    pub fn aws_code(&self) -> &'static str {
        match self {
            Self::Missing => "MissingAuthenticationTokenException",
            Self::Incomplete(_) => "IncompleteSignatureException",
            Self::Expired { .. }
            | Self::NotYetCurrent { .. }
            | Self::WrongService { .. }
            | Self::InvalidRegion(_)
            | Self::WrongTerminator(_)
            | Self::DateMismatch { .. }
            | Self::Mismatch => "InvalidSignatureException",
        }
    }

    /// The HTTP status: AWS JSON services answer all SigV4 failures with 400 (S3 uses 403).
    pub fn status(&self) -> http::StatusCode {
        http::StatusCode::BAD_REQUEST
    }

    /// The client-facing message, close to AWS's wording; built only from what the client sent.
    pub fn message(&self) -> String {
        self.to_string()
    }
}

/// A parsed and pre-checked `Authorization` header (no secret needed yet).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuthHeader {
    /// The access key id from the credential scope; the caller looks up its secret.
    pub access_key_id: String,
    /// The credential scope date, `YYYYMMDD`.
    pub date: String,
    /// The credential scope region; for us it selects the regional store.
    pub region: String,
    /// The credential scope service (equal to the expected service once parsed).
    pub service: String,
    /// The `SignedHeaders` list as sent: names lowercase, sorted, unique, joined by `;`, and
    /// including `host`. One string, where a vector of names cost an allocation per name.
    pub signed_headers: String,
    /// The request time as used in the string to sign, `YYYYMMDDTHHMMSSZ`.
    pub amz_date: String,
    /// The signature as sent (lowercase hex when well-formed).
    signature: String,
}

impl AuthHeader {
    /// The credential scope `date/region/service/aws4_request` (also a good signing-key cache key).
    pub fn credential_scope(&self) -> String {
        format!(
            "{}/{}/{}/{TERMINATOR}",
            self.date, self.region, self.service
        )
    }

    /// The signed header names, in order.
    pub fn signed_header_names(&self) -> impl Iterator<Item = &str> {
        self.signed_headers.split(';')
    }

    /// The string to sign, in the pieces it is made of, for the canonical request whose
    /// SHA-256 is `canonical_hash` (lowercase hex): the verifier feeds them to the HMAC as
    /// they are, without joining them first.
    fn string_to_sign_parts<'a>(&'a self, canonical_hash: &'a [u8; 64]) -> [&'a [u8]; 13] {
        [
            ALGORITHM.as_bytes(),
            b"\n",
            self.amz_date.as_bytes(),
            b"\n",
            self.date.as_bytes(),
            b"/",
            self.region.as_bytes(),
            b"/",
            self.service.as_bytes(),
            b"/",
            TERMINATOR.as_bytes(),
            b"\n",
            canonical_hash,
        ]
    }
}

/// Step 1: parse `Authorization` and the date header and check all that needs no secret.
pub fn parse(
    headers: &HeaderMap,
    expected_service: &str,
    now: SystemTime,
) -> Result<AuthHeader, SigV4Error> {
    let authorization = single_header(headers, "authorization")?.ok_or(SigV4Error::Missing)?;
    if authorization.len() > MAX_AUTH_HEADER_LEN {
        return Err(incomplete("Authorization header is too long."));
    }
    let authorization = std::str::from_utf8(authorization.as_bytes())
        .map_err(|_| incomplete("Authorization header is not valid UTF-8."))?;

    let (algorithm, params) = authorization
        .trim()
        .split_once(|c: char| c.is_ascii_whitespace())
        .unwrap_or((authorization.trim(), ""));
    if algorithm != ALGORITHM {
        return Err(incomplete(&format!(
            "Unsupported AWS 'algorithm': '{algorithm}'. Only '{ALGORITHM}' is supported."
        )));
    }

    let params = AuthParams::split(params)?;

    // X-Amz-Date wins over Date, as in AWS; botocore removes Date when it signs.
    let (date_header, raw_date) = match single_header(headers, "x-amz-date")? {
        Some(v) => ("x-amz-date", Some(v)),
        None => ("date", single_header(headers, "date")?),
    };

    // Like AWS, name every missing part at once and echo the header back.
    let (Some(credential), Some(signed_headers), Some(signature), Some(raw_date)) = (
        params.credential,
        params.signed_headers,
        params.signature,
        raw_date,
    ) else {
        let mut message = String::new();
        for (present, name) in [
            (params.credential.is_some(), "Credential"),
            (params.signature.is_some(), "Signature"),
            (params.signed_headers.is_some(), "SignedHeaders"),
        ] {
            if !present {
                message += &format!("Authorization header requires '{name}' parameter. ");
            }
        }
        if raw_date.is_none() {
            message += "Authorization header requires existence of either a 'X-Amz-Date' or a 'Date' header. ";
        }
        return Err(SigV4Error::Incomplete(format!(
            "{message}Authorization={authorization}"
        )));
    };

    let scope: Vec<&str> = credential.split('/').collect();
    let [access_key_id, scope_date, region, service, terminator] = scope.as_slice() else {
        return Err(incomplete(&format!(
            "Credential must have exactly 5 slash-delimited elements, e.g. keyid/date/region/service/term, got '{credential}'"
        )));
    };
    if access_key_id.is_empty() {
        return Err(incomplete("Credential must name an access key id."));
    }

    let raw_date = std::str::from_utf8(raw_date.as_bytes())
        .unwrap_or("")
        .trim();
    let request_time = parse_request_time(raw_date).ok_or_else(|| {
        incomplete(&format!(
            "Date must be in ISO-8601 'basic format' (YYYYMMDD'T'HHMMSS'Z'). Got '{raw_date}'."
        ))
    })?;
    let amz_date = format_amz_date(request_time);
    check_scope(
        scope_date,
        region,
        service,
        terminator,
        expected_service,
        &amz_date,
    )?;

    check_signed_headers(signed_headers)?;
    // Host binds the signature to this endpoint, the date header to this time window.
    let date_display = if date_header == "date" {
        "'Date'"
    } else {
        "'X-Amz-Date'"
    };
    for (required, display) in [
        ("host", "'Host' or ':authority'"),
        (date_header, date_display),
    ] {
        if !is_listed(signed_headers, required) {
            return Err(incomplete(&format!(
                "{display} must be a 'SignedHeader' in the AWS Authorization."
            )));
        }
    }
    // Stricter than AWS JSON services, like S3: every x-amz-* header must be signed. Otherwise an
    // unsigned X-Amz-Target could be swapped on a captured request to run another operation.
    let mut names = headers.keys().map(http::HeaderName::as_str);
    if let Some(name) = names.find(|n| n.starts_with("x-amz-") && !is_listed(signed_headers, n)) {
        return Err(incomplete(&format!(
            "There were headers present in the request which were not signed: '{name}'."
        )));
    }

    check_skew(request_time, now, &amz_date)?;

    Ok(AuthHeader {
        access_key_id: (*access_key_id).to_owned(),
        date: (*scope_date).to_owned(),
        region: (*region).to_owned(),
        service: (*service).to_owned(),
        signed_headers: signed_headers.to_owned(),
        amz_date,
        signature: signature.to_owned(),
    })
}

/// The `Credential`, `SignedHeaders` and `Signature` parameters after the algorithm name.
#[derive(Default)]
struct AuthParams<'a> {
    credential: Option<&'a str>,
    signed_headers: Option<&'a str>,
    signature: Option<&'a str>,
}

impl<'a> AuthParams<'a> {
    /// AWS tolerates `a=1,b=2` as well as `a=1, b=2` and stray commas; duplicates are ambiguous,
    /// so they are refused. Unknown parameters are ignored and empty values count as missing.
    fn split(params: &'a str) -> Result<Self, SigV4Error> {
        let mut out = Self::default();
        for part in params.split(',').map(str::trim).filter(|p| !p.is_empty()) {
            let (key, value) = part.split_once('=').unwrap_or((part, ""));
            let slot = match key.trim() {
                "Credential" => &mut out.credential,
                "SignedHeaders" => &mut out.signed_headers,
                "Signature" => &mut out.signature,
                _ => continue,
            };
            if slot.is_some() {
                return Err(incomplete(&format!(
                    "Authorization header has a duplicate '{}' parameter.",
                    key.trim()
                )));
            }
            *slot = Some(value.trim()).filter(|v| !v.is_empty());
        }
        Ok(out)
    }
}

/// Checks the credential scope against the request time and the service we serve.
fn check_scope(
    date: &str,
    region: &str,
    service: &str,
    terminator: &str,
    expected_service: &str,
    amz_date: &str,
) -> Result<(), SigV4Error> {
    if terminator != TERMINATOR {
        return Err(SigV4Error::WrongTerminator(terminator.to_owned()));
    }
    if service != expected_service {
        let expected = expected_service.to_owned();
        return Err(SigV4Error::WrongService { expected });
    }
    // Regions end up in ARNs and store keys, so only accept the shape AWS region names have.
    let region_byte = |b: u8| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-';
    if region.is_empty() || region.len() > 64 || !region.bytes().all(region_byte) {
        return Err(SigV4Error::InvalidRegion(region.to_owned()));
    }
    let request_day = amz_date.get(..8).unwrap_or_default();
    if date != request_day {
        return Err(SigV4Error::DateMismatch {
            scope_date: date.to_owned(),
            request_day: request_day.to_owned(),
            amz_date: amz_date.to_owned(),
        });
    }
    Ok(())
}

/// Whether `name` is in the `SignedHeaders` list (a handful of names: a scan is quickest).
fn is_listed(signed_headers: &str, name: &str) -> bool {
    signed_headers.split(';').any(|h| h == name)
}

/// Step 2: recompute the signature over method, raw URI, signed headers and `body`, and compare.
pub fn verify(
    auth: &AuthHeader,
    method: &Method,
    uri: &Uri,
    headers: &HeaderMap,
    body: &[u8],
    key: &SigningKey,
) -> Result<(), SigV4Error> {
    let payload_hash = sha256_hex(body);
    let canonical = canonical_request(auth, method, uri, headers, hex_str(&payload_hash))?;
    verify_canonical(auth, &canonical, key)
}

/// The SigV4 canonical request for a received request; `payload_sha256` is the body hash in hex.
pub fn canonical_request(
    auth: &AuthHeader,
    method: &Method,
    uri: &Uri,
    headers: &HeaderMap,
    payload_sha256: &str,
) -> Result<String, SigV4Error> {
    let authority = uri.authority().map(http::uri::Authority::as_str);
    build_canonical_request(
        auth,
        method.as_str(),
        uri.path(),
        uri.query().unwrap_or(""),
        authority,
        headers,
        payload_sha256,
    )
}

/// The SigV4 string to sign for a canonical request.
pub fn string_to_sign(auth: &AuthHeader, canonical_request: &str) -> String {
    let hash = sha256_hex(canonical_request.as_bytes());
    let parts = auth.string_to_sign_parts(&hash).concat();
    // Every part is ASCII or was a `&str`.
    String::from_utf8(parts).unwrap_or_default()
}

/// Signs the string to sign for `canonical` and compares with the sent signature in constant time.
fn verify_canonical(
    auth: &AuthHeader,
    canonical: &str,
    key: &SigningKey,
) -> Result<(), SigV4Error> {
    let hash = sha256_hex(canonical.as_bytes());
    let expected = hex32(&hmac_sha256_parts(
        &key.0,
        &auth.string_to_sign_parts(&hash),
    ));
    // Length is public (always 64 for us); ct_eq answers false at once for other lengths.
    if bool::from(expected.as_slice().ct_eq(auth.signature.as_bytes())) {
        Ok(())
    } else {
        Err(SigV4Error::Mismatch)
    }
}

/// Client side: the `Authorization` header for a request whose signed headers are
/// `headers` (lowercase names, sorted, including `host` and `x-amz-date`), signed with `key`
/// for `date/region/service` at `amz_date`. The load generator uses it, so that signer and
/// verifier share one canonicalisation; unit tests hold it to aws-sigv4's output.
#[allow(clippy::too_many_arguments)] // the SigV4 inputs, each a plain value
pub fn authorization(
    access_key_id: &str,
    key: &SigningKey,
    region: &str,
    service: &str,
    amz_date: &str,
    method: &str,
    path: &str,
    headers: &HeaderMap,
    body: &[u8],
) -> Result<String, SigV4Error> {
    let mut names: Vec<&str> = headers.keys().map(http::HeaderName::as_str).collect();
    names.sort_unstable();
    names.dedup();
    let signed_headers = names.join(";");
    let auth = AuthHeader {
        access_key_id: access_key_id.to_owned(),
        date: amz_date.get(..8).ok_or(SigV4Error::Mismatch)?.to_owned(),
        region: region.to_owned(),
        service: service.to_owned(),
        signed_headers,
        amz_date: amz_date.to_owned(),
        signature: String::new(),
    };
    let payload = sha256_hex(body);
    let canonical =
        build_canonical_request(&auth, method, path, "", None, headers, hex_str(&payload))?;
    let signature = hex32(&hmac_sha256(
        &key.0,
        string_to_sign(&auth, &canonical).as_bytes(),
    ));
    Ok(format!(
        "{ALGORITHM} Credential={access_key_id}/{}, SignedHeaders={}, Signature={}",
        auth.credential_scope(),
        auth.signed_headers,
        hex_str(&signature)
    ))
}

/// `YYYYMMDDTHHMMSSZ` for a point in time (the `X-Amz-Date` format).
pub fn amz_date(t: SystemTime) -> String {
    format_amz_date(unix_seconds(t))
}

/// Builds the canonical request from raw parts (path and query exactly as received).
fn build_canonical_request(
    auth: &AuthHeader,
    method: &str,
    raw_path: &str,
    raw_query: &str,
    authority: Option<&str>,
    headers: &HeaderMap,
    payload_sha256: &str,
) -> Result<String, SigV4Error> {
    let mut out = String::with_capacity(256 + raw_path.len() + raw_query.len());
    out.push_str(method);
    out.push('\n');
    // The JSON protocol always posts to `/` with no query: no work, no allocation.
    if raw_path == "/" {
        out.push('/');
    } else {
        out.push_str(&canonical_uri(raw_path));
    }
    out.push('\n');
    if !raw_query.is_empty() {
        out.push_str(&canonical_query(raw_query));
    }
    out.push('\n');
    for name in auth.signed_header_names() {
        out.push_str(name);
        out.push(':');
        let mut values = headers.get_all(name).iter().peekable();
        if values.peek().is_none() {
            // HTTP/2 carries the host as `:authority`, which hyper puts in the URI instead.
            match (name, authority) {
                ("host", Some(authority)) => out.push_str(authority),
                _ => return Err(SigV4Error::Mismatch),
            }
        }
        for (i, value) in values.enumerate() {
            // Signers only sign string values; other bytes would make the signature malleable.
            let value = std::str::from_utf8(value.as_bytes()).map_err(|_| SigV4Error::Mismatch)?;
            if i > 0 {
                out.push(',');
            }
            push_trimmed(&mut out, value);
        }
        out.push('\n');
    }
    out.push('\n');
    out.push_str(&auth.signed_headers);
    out.push('\n');
    out.push_str(payload_sha256);
    Ok(out)
}

/// Canonical URI for non-S3 services: the path as received is normalized (`.`/`..` removed,
/// empty segments collapsed) and each segment percent-encoded again. Because the received path is
/// already encoded once, this is AWS's "double encoding" (`%20` becomes `%2520`).
fn canonical_uri(raw_path: &str) -> String {
    let mut segments: Vec<&str> = Vec::new();
    for segment in raw_path.split('/') {
        match segment {
            "" | "." => {}
            ".." => {
                segments.pop();
            }
            s => segments.push(s),
        }
    }
    let mut out = String::with_capacity(raw_path.len() * 3 + 1);
    for segment in &segments {
        out.push('/');
        out.extend(percent_encode(segment.as_bytes(), UNRESERVED));
    }
    if segments.is_empty() || raw_path.ends_with('/') {
        out.push('/');
    }
    out
}

/// Canonical query: pairs decoded once, re-encoded (`%20`, never `+`), sorted by key then value.
/// A literal `+` is kept as a `+` character (encoded `%2B`), as the SDKs never send form encoding.
fn canonical_query(raw_query: &str) -> String {
    let encode = |s: &str| {
        percent_encode(&percent_decode_str(s).collect::<Vec<u8>>(), UNRESERVED).to_string()
    };
    let mut pairs: Vec<(String, String)> = raw_query
        .split('&')
        .filter(|p| !p.is_empty())
        .map(|p| {
            let (k, v) = p.split_once('=').unwrap_or((p, ""));
            (encode(k), encode(v))
        })
        .collect();
    pairs.sort_unstable();
    let joined: Vec<String> = pairs.into_iter().map(|(k, v)| format!("{k}={v}")).collect();
    joined.join("&")
}

/// Appends a header value with outer spaces trimmed and inner runs of spaces collapsed to one.
fn push_trimmed(out: &mut String, value: &str) {
    let mut previous_space = false;
    for c in value.trim_matches(' ').chars() {
        if c == ' ' && previous_space {
            continue;
        }
        previous_space = c == ' ';
        out.push(c);
    }
}

/// Insists that `SignedHeaders` has the form signers produce: lowercase, sorted, unique.
fn check_signed_headers(list: &str) -> Result<(), SigV4Error> {
    let valid_name = |n: &str| {
        !n.is_empty()
            && n.bytes().all(|b| {
                b.is_ascii_lowercase() || b.is_ascii_digit() || b"!#$%&'*+-.^_`|~".contains(&b)
            })
    };
    if !list.split(';').all(valid_name) {
        return Err(incomplete(&format!(
            "SignedHeaders must be lowercase header names separated by ';', got '{list}'."
        )));
    }
    let mut names = list.split(';');
    let mut previous = names.next();
    let sorted = names.all(|n| {
        let ordered = previous.is_some_and(|p| p < n);
        previous = Some(n);
        ordered
    });
    if !sorted {
        return Err(incomplete(&format!(
            "SignedHeaders must be sorted and unique, got '{list}'."
        )));
    }
    Ok(())
}

/// Returns the one value of header `name`, or an error when it is sent more than once.
fn single_header<'a>(
    headers: &'a HeaderMap,
    name: &str,
) -> Result<Option<&'a http::HeaderValue>, SigV4Error> {
    let mut values = headers.get_all(name).iter();
    let first = values.next();
    if values.next().is_some() {
        return Err(incomplete(&format!(
            "Request has more than one '{name}' header."
        )));
    }
    Ok(first)
}

/// Rejects a request time outside now ± [`MAX_SKEW`], with AWS's messages.
fn check_skew(request_time: i64, now: SystemTime, amz_date: &str) -> Result<(), SigV4Error> {
    let now = unix_seconds(now);
    let skew = MAX_SKEW.as_secs() as i64;
    if request_time < now.saturating_sub(skew) {
        return Err(SigV4Error::Expired {
            amz_date: amz_date.to_owned(),
            earliest: format_amz_date(now.saturating_sub(skew)),
            now: format_amz_date(now),
        });
    }
    if request_time > now.saturating_add(skew) {
        return Err(SigV4Error::NotYetCurrent {
            amz_date: amz_date.to_owned(),
            latest: format_amz_date(now.saturating_add(skew)),
            now: format_amz_date(now),
        });
    }
    Ok(())
}

fn incomplete(message: &str) -> SigV4Error {
    SigV4Error::Incomplete(message.to_owned())
}

/// The derived SigV4 signing key for one (secret, date, region, service); zeroized on drop.
#[derive(Clone, Zeroize, ZeroizeOnDrop)]
pub struct SigningKey([u8; 32]);

impl SigningKey {
    /// Derives `kSigning` through the HMAC chain date → region → service → `aws4_request`.
    pub fn derive(secret_access_key: &[u8], date: &str, region: &str, service: &str) -> SigningKey {
        let mut k_secret = Zeroizing::new(Vec::with_capacity(4 + secret_access_key.len()));
        k_secret.extend_from_slice(b"AWS4");
        k_secret.extend_from_slice(secret_access_key);
        let k_date = Zeroizing::new(hmac_sha256(&k_secret, date.as_bytes()));
        let k_region = Zeroizing::new(hmac_sha256(&*k_date, region.as_bytes()));
        let k_service = Zeroizing::new(hmac_sha256(&*k_region, service.as_bytes()));
        SigningKey(hmac_sha256(&*k_service, TERMINATOR.as_bytes()))
    }
}

impl fmt::Debug for SigningKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SigningKey([SENSITIVE])")
    }
}

/// Lowercase hex of a SHA-256 or HMAC-SHA256 output, on the stack: `hex::encode` builds
/// its `String` a `char` at a time, and a request hashes three of them.
fn hex32(bytes: &[u8; 32]) -> [u8; 64] {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut out = [0u8; 64];
    for (pair, b) in out.chunks_exact_mut(2).zip(bytes) {
        pair[0] = DIGITS[usize::from(b >> 4)];
        pair[1] = DIGITS[usize::from(b & 0x0f)];
    }
    out
}

/// [`hex32`] of the SHA-256 of `data`: the payload hash and the canonical request's hash.
fn sha256_hex(data: &[u8]) -> [u8; 64] {
    hex32(&Sha256::digest(data).into())
}

/// The text of [`hex32`]'s output (always ASCII).
fn hex_str(hex: &[u8; 64]) -> &str {
    std::str::from_utf8(hex).unwrap_or_default()
}

/// HMAC-SHA256 without a fallible constructor: HMAC zero-pads a key to the block size (and hashes
/// keys longer than a block first), so building that block ourselves is exact and cannot fail.
fn hmac_sha256(key: &[u8], data: &[u8]) -> [u8; 32] {
    hmac_sha256_parts(key, &[data])
}

/// [`hmac_sha256`] of the concatenation of `parts`.
fn hmac_sha256_parts(key: &[u8], parts: &[&[u8]]) -> [u8; 32] {
    let mut block = Zeroizing::new([0u8; 64]);
    if key.len() > block.len() {
        block[..32].copy_from_slice(&Sha256::digest(key));
    } else {
        block[..key.len()].copy_from_slice(key);
    }
    let mut mac = <HmacSha256 as KeyInit>::new(&(*block).into());
    for part in parts {
        mac.update(part);
    }
    mac.finalize().into_bytes().into()
}

/// Parses `YYYYMMDDTHHMMSSZ`, or an IMF-fixdate `Date` header, to Unix seconds.
fn parse_request_time(value: &str) -> Option<i64> {
    parse_amz_date(value).or_else(|| parse_http_date(value))
}

/// Parses ISO-8601 basic `YYYYMMDDTHHMMSSZ` (the only form the SDKs send) to Unix seconds.
fn parse_amz_date(value: &str) -> Option<i64> {
    let b = value.as_bytes();
    if b.len() != 16 || b[8] != b'T' || b[15] != b'Z' {
        return None;
    }
    let num = |range: std::ops::Range<usize>| -> Option<i64> {
        let digits = b.get(range)?;
        digits.iter().try_fold(0i64, |acc, d| {
            d.is_ascii_digit().then(|| acc * 10 + i64::from(d - b'0'))
        })
    };
    to_unix(
        num(0..4)?,
        num(4..6)?,
        num(6..8)?,
        num(9..11)?,
        num(11..13)?,
        num(13..15)?,
    )
}

/// Parses an RFC 7231 IMF-fixdate such as `Sun, 30 Aug 2015 12:36:00 GMT` to Unix seconds.
fn parse_http_date(value: &str) -> Option<i64> {
    const MONTHS: [&str; 12] = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    let parts: Vec<&str> = value.split_ascii_whitespace().collect();
    let [weekday, day, month, year, time, "GMT"] = parts.as_slice() else {
        return None;
    };
    let two = |s: &str| -> Option<i64> {
        (s.len() == 2 && s.bytes().all(|b| b.is_ascii_digit())).then(|| s.parse().ok())?
    };
    if weekday.len() != 4 || !weekday.ends_with(',') || year.len() != 4 {
        return None;
    }
    let month = MONTHS.iter().position(|m| m == month)? as i64 + 1;
    let year: i64 = year
        .bytes()
        .all(|b| b.is_ascii_digit())
        .then(|| year.parse().ok())??;
    let mut hms = time.split(':');
    let (h, m, s) = (two(hms.next()?)?, two(hms.next()?)?, two(hms.next()?)?);
    if hms.next().is_some() {
        return None;
    }
    to_unix(year, month, two(day)?, h, m, s)
}

/// Validates a UTC civil time and converts it to Unix seconds (days-from-civil, proleptic Gregorian).
fn to_unix(year: i64, month: i64, day: i64, hour: i64, minute: i64, second: i64) -> Option<i64> {
    let leap = (year % 4 == 0 && year % 100 != 0) || year % 400 == 0;
    let max_day = match month {
        1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
        4 | 6 | 9 | 11 => 30,
        2 if leap => 29,
        2 => 28,
        _ => return None,
    };
    if !(1..=max_day).contains(&day) || hour > 23 || minute > 59 || second > 59 {
        return None;
    }
    // Shift the year to start in March so that the leap day is the last day of the year.
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let year_of_era = y - era * 400;
    let day_of_year = (153 * ((month + 9) % 12) + 2) / 5 + day - 1;
    let day_of_era = year_of_era * 365 + year_of_era / 4 - year_of_era / 100 + day_of_year;
    let days = era * 146_097 + day_of_era - 719_468;
    Some(days * 86_400 + hour * 3600 + minute * 60 + second)
}

/// Formats Unix seconds as `YYYYMMDDTHHMMSSZ` (civil-from-days, the inverse of [`to_unix`]).
fn format_amz_date(unix: i64) -> String {
    let (days, secs) = (unix.div_euclid(86_400), unix.rem_euclid(86_400));
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let day_of_era = z - era * 146_097;
    let year_of_era =
        (day_of_era - day_of_era / 1460 + day_of_era / 36_524 - day_of_era / 146_096) / 365;
    let day_of_year = day_of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100);
    let mp = (5 * day_of_year + 2) / 153;
    let day = day_of_year - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = year_of_era + era * 400 + i64::from(month <= 2);
    if !(0..=9999).contains(&year) {
        // Out of the four-digit range only in error messages about absurd dates.
        return format!(
            "{year:04}{month:02}{day:02}T{:02}{:02}{:02}Z",
            secs / 3600,
            secs % 3600 / 60,
            secs % 60
        );
    }
    // Every request formats its date once; `format!` was 1.4% of a hot read's CPU.
    fn digits(out: &mut String, value: i64, width: u32) {
        for place in (0..width).rev() {
            out.push(char::from(b'0' + (value / 10i64.pow(place) % 10) as u8));
        }
    }
    let mut out = String::with_capacity(16);
    digits(&mut out, year, 4);
    digits(&mut out, month, 2);
    digits(&mut out, day, 2);
    out.push('T');
    digits(&mut out, secs / 3600, 2);
    digits(&mut out, secs % 3600 / 60, 2);
    digits(&mut out, secs % 60, 2);
    out.push('Z');
    out
}

/// Unix seconds of a `SystemTime`, negative before 1970, saturating far out of range.
fn unix_seconds(t: SystemTime) -> i64 {
    match t.duration_since(UNIX_EPOCH) {
        Ok(d) => i64::try_from(d.as_secs()).unwrap_or(i64::MAX),
        Err(e) => i64::try_from(e.duration().as_secs()).map_or(i64::MIN, |s| -s),
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;
    use http::{HeaderName, HeaderValue};
    use std::path::{Path, PathBuf};

    /// The fixed credentials of AWS's SigV4 test suite.
    const SUITE_SECRET: &str = "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY";
    /// `get-vanilla` from the suite: GET / with host and x-amz-date signed.
    const VANILLA_AUTHZ: &str = "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/service/aws4_request, SignedHeaders=host;x-amz-date, Signature=5fa00fa31553b73ebf1942676e86291e8372ff2a2260956d9b8aae1d763fbf31";
    const VANILLA_DATE: &str = "20150830T123600Z";

    fn at(amz_date: &str) -> SystemTime {
        let secs = parse_amz_date(amz_date).unwrap();
        UNIX_EPOCH + Duration::from_secs(u64::try_from(secs).unwrap())
    }

    fn header_map(pairs: &[(&str, &str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (name, value) in pairs {
            map.append(
                HeaderName::from_bytes(name.as_bytes()).unwrap(),
                HeaderValue::from_str(value).unwrap(),
            );
        }
        map
    }

    fn vanilla(authz: &str) -> HeaderMap {
        header_map(&[
            ("host", "example.amazonaws.com"),
            ("x-amz-date", VANILLA_DATE),
            ("authorization", authz),
        ])
    }

    /// What the server does: parse, derive the key from the scope, verify (`/` and the given method).
    fn check(
        headers: &HeaderMap,
        method: &str,
        body: &[u8],
        secret: &str,
        service: &str,
        now: SystemTime,
    ) -> Result<AuthHeader, SigV4Error> {
        let auth = parse(headers, service, now)?;
        let key = SigningKey::derive(secret.as_bytes(), &auth.date, &auth.region, &auth.service);
        verify(
            &auth,
            &Method::from_bytes(method.as_bytes()).unwrap(),
            &Uri::from_static("/"),
            headers,
            body,
            &key,
        )?;
        Ok(auth)
    }

    fn check_vanilla(headers: &HeaderMap, now: SystemTime) -> Result<AuthHeader, SigV4Error> {
        check(headers, "GET", b"", SUITE_SECRET, "service", now)
    }

    fn code(r: Result<AuthHeader, SigV4Error>) -> &'static str {
        r.map(|_| "Ok").unwrap_or_else(|e| e.aws_code())
    }

    // ---- AWS's own test suite -------------------------------------------------------------

    /// Cases whose `.req` cannot reproduce their `.creq` from the request alone.
    const SKIPPED_SUITE_CASES: &[(&str, &str)] = &[(
        "get-vanilla-with-session-token",
        "its .creq signs an X-Amz-Security-Token header that its .req does not contain",
    )];

    struct SuiteRequest {
        method: String,
        path: String,
        query: String,
        headers: HeaderMap,
        body: Vec<u8>,
    }

    /// Reads a suite `.req` file: request line, headers (folded lines unfolded), blank line, body.
    fn parse_suite_request(text: &str) -> SuiteRequest {
        let mut lines = text.split('\n');
        let request_line = lines.next().unwrap();
        let (method, rest) = request_line.split_once(' ').unwrap();
        let target = &rest[..rest.rfind(" HTTP/").unwrap()];
        let (path, query) = target.split_once('?').unwrap_or((target, ""));
        let mut raw_headers: Vec<(String, String)> = Vec::new();
        let mut body_lines = Vec::new();
        let mut in_body = false;
        for line in lines {
            if in_body {
                body_lines.push(line);
            } else if line.is_empty() {
                in_body = true;
            } else if line.starts_with([' ', '\t']) {
                // obs-fold: a proxy replaces the line break with a space (RFC 7230 §3.2.4).
                let last = raw_headers.last_mut().unwrap();
                last.1.push(' ');
                last.1.push_str(line);
            } else {
                let (name, value) = line.split_once(':').unwrap();
                raw_headers.push((name.to_owned(), value.to_owned()));
            }
        }
        let mut headers = HeaderMap::new();
        for (name, value) in raw_headers {
            headers.append(
                HeaderName::from_bytes(name.as_bytes()).unwrap(),
                HeaderValue::from_str(&value).unwrap(),
            );
        }
        SuiteRequest {
            method: method.to_owned(),
            path: path.to_owned(),
            query: query.to_owned(),
            headers,
            body: body_lines.join("\n").into_bytes(),
        }
    }

    fn find_req_files(dir: &Path, out: &mut Vec<PathBuf>) {
        for entry in std::fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                find_req_files(&path, out);
            } else if path.extension().is_some_and(|e| e == "req") {
                out.push(path);
            }
        }
    }

    #[test]
    fn aws_sigv4_testsuite() {
        let Some(dir) = std::env::var_os("SIGV4_TESTSUITE_DIR") else {
            assert!(
                std::env::var("CI").as_deref() != Ok("true"),
                "SIGV4_TESTSUITE_DIR must be set under CI (see scripts/fetch-sigv4-testsuite.sh)"
            );
            eprintln!(
                "skipped: SIGV4_TESTSUITE_DIR is not set (see scripts/fetch-sigv4-testsuite.sh)"
            );
            return;
        };
        let mut files = Vec::new();
        find_req_files(Path::new(&dir), &mut files);
        files.sort();
        let (mut ran, mut raw, mut skipped) = (0, 0, 0);
        for req_file in files {
            let name = req_file.file_stem().unwrap().to_string_lossy().into_owned();
            if SKIPPED_SUITE_CASES.iter().any(|(n, _)| *n == name) {
                skipped += 1;
                continue;
            }
            let read = |ext: &str| std::fs::read_to_string(req_file.with_extension(ext)).unwrap();
            let mut req = parse_suite_request(&read("req"));
            let (creq, sts, authz) = (read("creq"), read("sts"), read("authz"));
            req.headers.append(
                "authorization",
                HeaderValue::from_str(authz.trim()).unwrap(),
            );
            let now = at(sts.lines().nth(1).unwrap());

            let auth = parse(&req.headers, "service", now)
                .unwrap_or_else(|e| panic!("{name}: parse: {e}"));
            let payload_hash = hex::encode(Sha256::digest(&req.body));
            let mine = build_canonical_request(
                &auth,
                &req.method,
                &req.path,
                &req.query,
                None,
                &req.headers,
                &payload_hash,
            )
            .unwrap_or_else(|e| panic!("{name}: canonical request: {e}"));
            assert_eq!(
                mine,
                creq.trim_end_matches('\n'),
                "{name}: canonical request"
            );
            assert_eq!(
                string_to_sign(&auth, &mine),
                sts.trim_end_matches('\n'),
                "{name}: string to sign"
            );

            let key = SigningKey::derive(
                SUITE_SECRET.as_bytes(),
                &auth.date,
                &auth.region,
                &auth.service,
            );
            let target = if req.query.is_empty() {
                req.path.clone()
            } else {
                format!("{}?{}", req.path, req.query)
            };
            // A raw space or non-ASCII byte cannot reach a server inside a URI, so those cases
            // verify through the raw-parts path the public `verify` uses internally.
            let verdict = match Uri::try_from(target.as_str()) {
                Ok(uri) => verify(
                    &auth,
                    &Method::from_bytes(req.method.as_bytes()).unwrap(),
                    &uri,
                    &req.headers,
                    &req.body,
                    &key,
                ),
                Err(_) => {
                    raw += 1;
                    verify_canonical(&auth, &mine, &key)
                }
            };
            verdict.unwrap_or_else(|e| panic!("{name}: verify: {e}"));
            ran += 1;

            if name == "post-sts-header-before" {
                // post-sts-header-after: the same token added after signing. AWS accepts that for
                // some services; we insist every x-amz-* header is signed.
                let mut unsigned = parse_suite_request(&read("req"));
                unsigned.headers.append("authorization", HeaderValue::from_static(
                    "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/service/aws4_request, SignedHeaders=host;x-amz-date, Signature=5da7c1a2acd57cee7505fc6676e4e544621c30862966e37dddb68e92efbe5d6b",
                ));
                assert_eq!(
                    code(parse(&unsigned.headers, "service", now)),
                    "IncompleteSignatureException"
                );
            }
        }
        eprintln!("aws4_testsuite: {ran} cases passed ({raw} with a raw path), {skipped} skipped");
        assert!(ran >= 30, "expected the full suite, ran only {ran} cases");
    }

    // ---- unit tests ---------------------------------------------------------------------------

    #[test]
    fn vanilla_accepted_and_fields_parsed() {
        let auth = check_vanilla(&vanilla(VANILLA_AUTHZ), at(VANILLA_DATE)).unwrap();
        assert_eq!(auth.access_key_id, "AKIDEXAMPLE");
        assert_eq!(
            (
                auth.date.as_str(),
                auth.region.as_str(),
                auth.service.as_str()
            ),
            ("20150830", "us-east-1", "service")
        );
        assert_eq!(auth.signed_headers, "host;x-amz-date");
        assert_eq!(
            auth.credential_scope(),
            "20150830/us-east-1/service/aws4_request"
        );
    }

    #[test]
    fn missing_header_is_missing_authentication_token() {
        let err = parse(&HeaderMap::new(), "secretsmanager", SystemTime::now()).unwrap_err();
        assert_eq!(err, SigV4Error::Missing);
        assert_eq!(err.aws_code(), "MissingAuthenticationTokenException");
        assert_eq!(err.message(), "Request is missing Authentication Token");
        assert_eq!(err.status(), http::StatusCode::BAD_REQUEST);
    }

    #[test]
    fn spacing_and_stray_commas_are_tolerated() {
        let compact = VANILLA_AUTHZ.replace(", ", ",");
        let loose = VANILLA_AUTHZ
            .replace(", ", " ,  , ")
            .replacen(' ', "   ", 1)
            + ",";
        for authz in [compact, loose] {
            check_vanilla(&vanilla(&authz), at(VANILLA_DATE))
                .unwrap_or_else(|e| panic!("{authz}: {e}"));
        }
    }

    #[test]
    fn malformed_headers_are_incomplete_signature() {
        let cred = "Credential=AKIDEXAMPLE/20150830/us-east-1/service/aws4_request";
        let sig = "Signature=5fa00fa31553b73ebf1942676e86291e8372ff2a2260956d9b8aae1d763fbf31";
        let cases = [
            String::new(),
            "garbage".into(),
            "Bearer abc.def".into(),
            "AWS4-HMAC-SHA256".into(),
            "AWS4-HMAC-SHA256 ,,,".into(),
            format!("AWS4-HMAC-SHA1 {cred}, SignedHeaders=host;x-amz-date, {sig}"),
            format!("AWS4-ECDSA-P256-SHA256 {cred}, SignedHeaders=host;x-amz-date, {sig}"),
            format!("AWS4-HMAC-SHA256 {cred}"),
            format!("AWS4-HMAC-SHA256 {cred}, {sig}"),
            format!("AWS4-HMAC-SHA256 {cred}, SignedHeaders=host;x-amz-date"),
            format!("AWS4-HMAC-SHA256 {cred}, SignedHeaders=, {sig}"),
            format!("AWS4-HMAC-SHA256 Credential=, SignedHeaders=host;x-amz-date, {sig}"),
            format!(
                "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/service, SignedHeaders=host;x-amz-date, {sig}"
            ),
            format!(
                "AWS4-HMAC-SHA256 Credential=AK/ID/20150830/us-east-1/service/aws4_request, SignedHeaders=host;x-amz-date, {sig}"
            ),
            format!(
                "AWS4-HMAC-SHA256 Credential=/20150830/us-east-1/service/aws4_request, SignedHeaders=host;x-amz-date, {sig}"
            ),
            format!("AWS4-HMAC-SHA256 {cred}, {cred}, SignedHeaders=host;x-amz-date, {sig}"),
            format!("AWS4-HMAC-SHA256 {cred}, SignedHeaders=x-amz-date;host, {sig}"),
            format!("AWS4-HMAC-SHA256 {cred}, SignedHeaders=Host;x-amz-date, {sig}"),
            format!("AWS4-HMAC-SHA256 {cred}, SignedHeaders=host;host;x-amz-date, {sig}"),
            format!("AWS4-HMAC-SHA256 {cred}, SignedHeaders=host;;x-amz-date, {sig}"),
            format!("AWS4-HMAC-SHA256 {cred}, SignedHeaders=host, {sig}"),
            format!("AWS4-HMAC-SHA256 {cred}, SignedHeaders=x-amz-date, {sig}"),
            format!(
                "AWS4-HMAC-SHA256 {cred}, SignedHeaders=host;x-amz-date, {sig}, {}",
                "x".repeat(MAX_AUTH_HEADER_LEN)
            ),
        ];
        for authz in &cases {
            let err = check_vanilla(&vanilla(authz), at(VANILLA_DATE)).unwrap_err();
            assert_eq!(
                err.aws_code(),
                "IncompleteSignatureException",
                "{authz}: {err}"
            );
        }
        let date_err = check_vanilla(&vanilla(&cases[20]), at(VANILLA_DATE)).unwrap_err();
        assert_eq!(
            date_err.message(),
            "'X-Amz-Date' must be a 'SignedHeader' in the AWS Authorization."
        );
        let host_err = check_vanilla(&vanilla(&cases[21]), at(VANILLA_DATE)).unwrap_err();
        assert_eq!(
            host_err.message(),
            "'Host' or ':authority' must be a 'SignedHeader' in the AWS Authorization."
        );
        let parts_err = check_vanilla(&vanilla(&cases[7]), at(VANILLA_DATE))
            .unwrap_err()
            .message();
        assert!(parts_err.starts_with("Authorization header requires 'Signature' parameter. Authorization header requires 'SignedHeaders' parameter. Authorization=AWS4"), "{parts_err}");
    }

    #[test]
    fn broken_date_or_duplicate_headers_are_incomplete_signature() {
        let no_date = header_map(&[
            ("host", "example.amazonaws.com"),
            ("authorization", VANILLA_AUTHZ),
        ]);
        let err = check_vanilla(&no_date, at(VANILLA_DATE)).unwrap_err();
        assert_eq!(err.aws_code(), "IncompleteSignatureException");
        assert!(
            err.message().contains("'X-Amz-Date' or a 'Date' header"),
            "{err}"
        );
        for bad in [
            "2015-08-30T12:36:00Z",
            "20150830T123600",
            "20151330T123600Z",
            "20150230T123600Z",
            "20150830T246000Z",
            "２0150830T123600Z",
            "",
        ] {
            let headers = header_map(&[
                ("host", "example.amazonaws.com"),
                ("x-amz-date", bad),
                ("authorization", VANILLA_AUTHZ),
            ]);
            assert_eq!(
                code(check_vanilla(&headers, at(VANILLA_DATE))),
                "IncompleteSignatureException",
                "{bad}"
            );
        }
        let mut twice = vanilla(VANILLA_AUTHZ);
        twice.append("authorization", HeaderValue::from_static(VANILLA_AUTHZ));
        assert_eq!(
            code(check_vanilla(&twice, at(VANILLA_DATE))),
            "IncompleteSignatureException"
        );
        let mut two_dates = vanilla(VANILLA_AUTHZ);
        two_dates.append("x-amz-date", HeaderValue::from_static(VANILLA_DATE));
        assert_eq!(
            code(check_vanilla(&two_dates, at(VANILLA_DATE))),
            "IncompleteSignatureException"
        );
        let mut binary = vanilla(VANILLA_AUTHZ);
        binary.insert(
            "authorization",
            HeaderValue::from_bytes(b"AWS4-HMAC-SHA256 Credential=\xff\xfe").unwrap(),
        );
        assert_eq!(
            code(check_vanilla(&binary, at(VANILLA_DATE))),
            "IncompleteSignatureException"
        );
    }

    #[test]
    fn clock_skew_window_is_five_minutes_each_way() {
        let t = parse_amz_date(VANILLA_DATE).unwrap();
        let now =
            |offset: i64| UNIX_EPOCH + Duration::from_secs(u64::try_from(t + offset).unwrap());
        for offset in [-300, -299, 0, 299, 300] {
            check_vanilla(&vanilla(VANILLA_AUTHZ), now(offset))
                .unwrap_or_else(|e| panic!("{offset}: {e}"));
        }
        // Server clock 301 s after the request: the signature has expired.
        let late = check_vanilla(&vanilla(VANILLA_AUTHZ), now(301)).unwrap_err();
        assert_eq!(late.aws_code(), "InvalidSignatureException");
        assert_eq!(
            late.message(),
            "Signature expired: 20150830T123600Z is now earlier than 20150830T123601Z (20150830T124101Z - 5 min.)"
        );
        // Server clock 301 s before the request: AWS calls it "not yet current".
        let early = check_vanilla(&vanilla(VANILLA_AUTHZ), now(-301)).unwrap_err();
        assert_eq!(early.aws_code(), "InvalidSignatureException");
        assert_eq!(
            early.message(),
            "Signature not yet current: 20150830T123600Z is still later than 20150830T123559Z (20150830T123059Z + 5 min.)"
        );
        // A clock before 1970 or absurdly far ahead must not overflow.
        assert_eq!(
            code(check_vanilla(
                &vanilla(VANILLA_AUTHZ),
                UNIX_EPOCH - Duration::from_secs(1 << 40)
            )),
            "InvalidSignatureException"
        );
        assert_eq!(
            code(check_vanilla(
                &vanilla(VANILLA_AUTHZ),
                UNIX_EPOCH + Duration::from_secs(u64::MAX >> 2)
            )),
            "InvalidSignatureException"
        );
    }

    #[test]
    fn scope_checks_are_invalid_signature() {
        let now = at(VANILLA_DATE);
        let wrong_service = parse(&vanilla(VANILLA_AUTHZ), "secretsmanager", now).unwrap_err();
        assert_eq!(wrong_service.aws_code(), "InvalidSignatureException");
        assert_eq!(
            wrong_service.message(),
            "Credential should be scoped to correct service: 'secretsmanager'. "
        );

        let next_day = header_map(&[
            ("host", "example.amazonaws.com"),
            ("x-amz-date", "20150831T000100Z"),
            ("authorization", VANILLA_AUTHZ),
        ]);
        let err = check_vanilla(&next_day, at("20150831T000100Z")).unwrap_err();
        assert!(matches!(err, SigV4Error::DateMismatch { .. }), "{err}");
        assert_eq!(err.aws_code(), "InvalidSignatureException");

        for (from, to) in [
            ("/aws4_request", "/aws4_requesT"),
            ("/us-east-1/", "/US-EAST-1/"),
            ("/us-east-1/", "//"),
            ("/20150830/", "/20150829/"),
        ] {
            let authz = VANILLA_AUTHZ.replace(from, to);
            assert_eq!(
                code(check_vanilla(&vanilla(&authz), now)),
                "InvalidSignatureException",
                "{authz}"
            );
        }
        // A region that is well-formed but not the signed one is a plain mismatch.
        let other_region = VANILLA_AUTHZ.replace("us-east-1", "us-east-2");
        assert_eq!(
            check_vanilla(&vanilla(&other_region), now).unwrap_err(),
            SigV4Error::Mismatch
        );
    }

    #[test]
    fn signature_tampering_is_mismatch() {
        let now = at(VANILLA_DATE);
        let good = "5fa00fa31553b73ebf1942676e86291e8372ff2a2260956d9b8aae1d763fbf31";
        for bad in [
            "5fa00fa31553b73ebf1942676e86291e8372ff2a2260956d9b8aae1d763fbf30",
            "5FA00FA31553B73EBF1942676E86291E8372FF2A2260956D9B8AAE1D763FBF31",
            "5fa00fa3",
            "zz",
            &format!("{good}00"),
        ] {
            let err = check_vanilla(&vanilla(&VANILLA_AUTHZ.replace(good, bad)), now).unwrap_err();
            assert_eq!(err, SigV4Error::Mismatch, "{bad}");
            assert!(
                err.message()
                    .starts_with("The request signature we calculated does not match")
            );
        }
        let mut other_host = vanilla(VANILLA_AUTHZ);
        other_host.insert(
            "host",
            HeaderValue::from_static("example.amazonaws.com:443"),
        );
        assert_eq!(
            check_vanilla(&other_host, now).unwrap_err(),
            SigV4Error::Mismatch
        );
        assert_eq!(
            code(check(
                &vanilla(VANILLA_AUTHZ),
                "GET",
                b"",
                "wrong secret",
                "service",
                now
            )),
            "InvalidSignatureException"
        );
        assert_eq!(
            code(check(
                &vanilla(VANILLA_AUTHZ),
                "POST",
                b"",
                SUITE_SECRET,
                "service",
                now
            )),
            "InvalidSignatureException"
        );
        assert_eq!(
            code(check(
                &vanilla(VANILLA_AUTHZ),
                "GET",
                b"x",
                SUITE_SECRET,
                "service",
                now
            )),
            "InvalidSignatureException"
        );
    }

    #[test]
    fn unsigned_amz_header_and_hostile_values_are_rejected_without_panic() {
        let now = at(VANILLA_DATE);
        let mut extra = vanilla(VANILLA_AUTHZ);
        extra.insert(
            "x-amz-target",
            HeaderValue::from_static("secretsmanager.DeleteSecret"),
        );
        assert_eq!(
            code(check_vanilla(&extra, now)),
            "IncompleteSignatureException"
        );
        // Unsigned headers other than x-amz-* are fine: proxies and SDKs add them after signing.
        let mut ua = vanilla(VANILLA_AUTHZ);
        ua.insert("user-agent", HeaderValue::from_static("curl/8"));
        check_vanilla(&ua, now).unwrap();
        // A signed header that is not valid UTF-8 cannot have been signed by an SDK.
        let mut binary_host = vanilla(VANILLA_AUTHZ);
        binary_host.insert("host", HeaderValue::from_bytes(b"ex\xffample").unwrap());
        assert_eq!(
            check_vanilla(&binary_host, now).unwrap_err(),
            SigV4Error::Mismatch
        );
        // A signed header missing from the request.
        let no_host = header_map(&[
            ("x-amz-date", VANILLA_DATE),
            ("authorization", VANILLA_AUTHZ),
        ]);
        assert_eq!(
            check_vanilla(&no_host, now).unwrap_err(),
            SigV4Error::Mismatch
        );
        // Huge but otherwise valid headers only cost linear work.
        let mut huge = vanilla(VANILLA_AUTHZ);
        huge.insert(
            "x-other",
            HeaderValue::from_str(&" a ".repeat(100_000)).unwrap(),
        );
        check_vanilla(&huge, now).unwrap();
    }

    #[test]
    fn http2_authority_stands_in_for_a_missing_host_header() {
        let headers = header_map(&[
            ("x-amz-date", VANILLA_DATE),
            ("authorization", VANILLA_AUTHZ),
        ]);
        let auth = parse(&headers, "service", at(VANILLA_DATE)).unwrap();
        let key = SigningKey::derive(
            SUITE_SECRET.as_bytes(),
            &auth.date,
            &auth.region,
            &auth.service,
        );
        let uri = Uri::from_static("https://example.amazonaws.com/");
        verify(&auth, &Method::GET, &uri, &headers, b"", &key).unwrap();
    }

    #[test]
    fn date_header_in_http_format_is_accepted_when_signed() {
        let secret = "date-header-secret";
        let date = "Sun, 30 Aug 2015 12:36:00 GMT";
        let unsigned = "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/service/aws4_request, SignedHeaders=date;host, Signature=0";
        let mut headers = header_map(&[
            ("host", "example.amazonaws.com"),
            ("date", date),
            ("authorization", unsigned),
        ]);
        let auth = parse(&headers, "service", at(VANILLA_DATE)).unwrap();
        assert_eq!(auth.amz_date, VANILLA_DATE);
        // Sign it ourselves; the suite vectors already pin the signing math.
        let key = SigningKey::derive(secret.as_bytes(), &auth.date, &auth.region, &auth.service);
        let creq = canonical_request(
            &auth,
            &Method::GET,
            &Uri::from_static("/"),
            &headers,
            &hex::encode(Sha256::digest(b"")),
        )
        .unwrap();
        assert!(
            creq.contains("\ndate:Sun, 30 Aug 2015 12:36:00 GMT\n"),
            "{creq}"
        );
        let signature = hex::encode(hmac_sha256(&key.0, string_to_sign(&auth, &creq).as_bytes()));
        headers.insert(
            "authorization",
            HeaderValue::from_str(
                &unsigned.replace("Signature=0", &format!("Signature={signature}")),
            )
            .unwrap(),
        );
        check(&headers, "GET", b"", secret, "service", at(VANILLA_DATE)).unwrap();
        // The Date header must be signed when it carries the time.
        let unsigned_date = header_map(&[
            ("host", "h"),
            ("date", date),
            ("authorization", &unsigned.replace("date;host", "host")),
        ]);
        assert_eq!(
            code(check_vanilla(&unsigned_date, at(VANILLA_DATE))),
            "IncompleteSignatureException"
        );
        for bad in [
            "Sun, 30 Aug 2015 12:36:00 UTC",
            "Sunday, 30-Aug-15 12:36:00 GMT",
            "Sun, 31 Sep 2015 12:36:00 GMT",
            "Sun, 30 Aug 2015 12:36 GMT",
        ] {
            assert_eq!(parse_http_date(bad), None, "{bad}");
        }
    }

    #[test]
    fn civil_time_conversions_round_trip() {
        assert_eq!(parse_amz_date(VANILLA_DATE), Some(1_440_938_160));
        assert_eq!(parse_amz_date("20240229T235959Z"), Some(1_709_251_199));
        assert_eq!(parse_amz_date("20000301T000000Z"), Some(951_868_800));
        assert_eq!(parse_amz_date("19691231T235959Z"), Some(-1));
        assert_eq!(parse_amz_date("20230229T000000Z"), None);
        assert_eq!(parse_amz_date("21000229T000000Z"), None);
        assert_eq!(parse_amz_date("20150830T123660Z"), None);
        assert_eq!(
            parse_http_date("Sun, 30 Aug 2015 12:36:00 GMT"),
            Some(1_440_938_160)
        );
        // Every representable year, 0000 through 9999.
        for secs in (-62_167_219_200i64..253_402_300_800).step_by(9_876_543) {
            assert_eq!(parse_amz_date(&format_amz_date(secs)), Some(secs), "{secs}");
        }
        // Out-of-range instants still format (as odd years) instead of panicking.
        assert!(format_amz_date(i64::MAX).len() >= 16);
        assert!(format_amz_date(i64::MIN).len() >= 16);
    }

    #[test]
    fn canonical_uri_and_query_follow_aws_rules() {
        assert_eq!(canonical_uri("/"), "/");
        assert_eq!(canonical_uri(""), "/");
        assert_eq!(canonical_uri("/example%20space/"), "/example%2520space/");
        assert_eq!(canonical_uri("/a/./b/../c//d/"), "/a/c/d/");
        assert_eq!(canonical_uri("/../../x"), "/x");
        assert_eq!(canonical_query(""), "");
        assert_eq!(canonical_query("b=2&a=%7e&a=1&c&d="), "a=1&a=~&b=2&c=&d=");
        assert_eq!(
            canonical_query("k=a+b&s=a%20b&u=%E1%88%B4&bad=%zz"),
            "bad=%25zz&k=a%2Bb&s=a%20b&u=%E1%88%B4"
        );
    }

    /// Sign a secretsmanager POST with aws-sigv4 itself, the reference our signer and our
    /// verifier are held to. `credentials` is (access key id, secret, session token).
    fn reference_sign<'a>(
        credentials: (&str, &str, Option<String>),
        region: &str,
        at: SystemTime,
        url: &'a str,
        headers: impl Iterator<Item = (&'a str, &'a str)>,
        body: &'a [u8],
    ) -> aws_sigv4::http_request::SigningInstructions {
        use aws_credential_types::Credentials;
        use aws_sigv4::http_request::{SignableBody, SignableRequest, SigningSettings, sign};
        let (akid, secret, token) = credentials;
        let identity = Credentials::new(akid, secret, token, None, "test").into();
        let params = aws_sigv4::sign::v4::SigningParams::builder()
            .identity(&identity)
            .region(region)
            .name("secretsmanager")
            .time(at)
            .settings(SigningSettings::default())
            .build()
            .unwrap()
            .into();
        let request =
            SignableRequest::new("POST", url, headers, SignableBody::Bytes(body)).unwrap();
        sign(request, &params).unwrap().into_parts().0
    }

    #[test]
    fn client_authorization_matches_aws_sigv4_and_verifies() {
        let (akid, secret, region) = (
            "AKIDEXAMPLE12345",
            "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY",
            "eu-west-3",
        );
        let at = UNIX_EPOCH + Duration::from_secs(1_790_000_000);
        let date = amz_date(at);
        let body = br#"{"SecretId":"bench/0001"}"#;
        let pairs = [
            ("content-type", "application/x-amz-json-1.1"),
            ("host", "127.0.0.1:4000"),
            ("x-amz-date", date.as_str()),
            ("x-amz-target", "secretsmanager.GetSecretValue"),
        ];
        let headers = header_map(&pairs);
        let key = SigningKey::derive(secret.as_bytes(), &date[..8], region, "secretsmanager");
        let ours = authorization(
            akid,
            &key,
            region,
            "secretsmanager",
            &date,
            "POST",
            "/",
            &headers,
            body,
        )
        .unwrap();

        let instructions = reference_sign(
            (akid, secret, None),
            region,
            at,
            "http://127.0.0.1:4000/",
            pairs.iter().copied().filter(|(k, _)| *k != "x-amz-date"),
            body,
        );
        let theirs = instructions
            .headers()
            .find(|(k, _)| k.eq_ignore_ascii_case("authorization"))
            .map(|(_, v)| v.to_owned())
            .unwrap();
        assert_eq!(ours, theirs);

        let mut signed = headers.clone();
        signed.insert("authorization", HeaderValue::from_str(&ours).unwrap());
        let auth = parse(&signed, "secretsmanager", at).unwrap();
        let uri: Uri = "/".parse().unwrap();
        verify(&auth, &Method::POST, &uri, &signed, body, &key).unwrap();
    }

    #[test]
    fn hmac_matches_the_crate_for_short_and_long_keys() {
        for len in [0, 1, 32, 44, 63, 64, 65, 200] {
            let key = vec![0x5a_u8; len];
            let mut reference = <HmacSha256 as KeyInit>::new_from_slice(&key).unwrap();
            reference.update(b"data");
            assert_eq!(
                hmac_sha256(&key, b"data"),
                <[u8; 32]>::from(reference.finalize().into_bytes()),
                "{len}"
            );
        }
        let key = SigningKey::derive(SUITE_SECRET.as_bytes(), "20150830", "us-east-1", "service");
        assert_eq!(format!("{key:?}"), "SigningKey([SENSITIVE])");
    }

    // ---- botocore-signed requests -------------------------------------------------------------

    /// Signed offline by botocore 1.44.8's `SigV4Auth` at 20261129T212737Z for
    /// `POST http://127.0.0.1:4000/` (see the report of the change that added this module).
    type BotocoreRequest = (
        &'static str,
        &'static [(&'static str, &'static str)],
        &'static str,
    );

    /// (secret, headers as botocore sent them, body), all signed by botocore.
    const BOTOCORE_REQUESTS: &[BotocoreRequest] = &[
        (
            "boto/secret+key/ONE",
            &[
                ("Content-Type", "application/x-amz-json-1.1"),
                ("X-Amz-Target", "secretsmanager.GetSecretValue"),
                ("User-Agent", "Boto3/1.44.8 md/Botocore#1.44.8"),
                ("X-Amz-Date", "20261129T212737Z"),
                (
                    "Authorization",
                    "AWS4-HMAC-SHA256 Credential=AKIDBOTO1/20261129/us-east-1/secretsmanager/aws4_request, SignedHeaders=content-type;host;x-amz-date;x-amz-target, Signature=e33a2721ad03dacb20fd53ee08d4349caeb675c192c64a8baa1bdcf2c9e5e9c0",
                ),
                ("Content-Length", "19"),
            ],
            "{\"SecretId\": \"foo\"}",
        ),
        (
            "s3cr3t-two",
            &[
                ("Content-Type", "application/x-amz-json-1.1"),
                ("X-Amz-Target", "secretsmanager.CreateSecret"),
                ("User-Agent", "Boto3/1.44.8 md/Botocore#1.44.8"),
                ("X-Amz-Date", "20261129T212737Z"),
                ("X-Amz-Security-Token", "TOKEN123"),
                (
                    "Authorization",
                    "AWS4-HMAC-SHA256 Credential=AKIDBOTO2/20261129/eu-west-3/secretsmanager/aws4_request, SignedHeaders=content-type;host;x-amz-date;x-amz-security-token;x-amz-target, Signature=109aa8c8bafcaaf1f9501328905d3a5375031ced906c826cf724bcc5f64e6db7",
                ),
                ("Content-Length", "115"),
            ],
            "{\"Name\": \"db/p\u{e4}ss\", \"SecretString\": \"\u{2603} snow \u{1F600}\", \"ClientRequestToken\": \"94c44697-799f-4fa5-824a-581ec30ce8bb\"}",
        ),
        (
            "third",
            &[
                ("Content-Type", "application/x-amz-json-1.1"),
                ("X-Amz-Target", "secretsmanager.ListSecrets"),
                ("User-Agent", "Boto3/1.44.8 md/Botocore#1.44.8"),
                ("X-Amz-Date", "20261129T212737Z"),
                (
                    "Authorization",
                    "AWS4-HMAC-SHA256 Credential=AKIDBOTO3/20261129/ap-southeast-2/secretsmanager/aws4_request, SignedHeaders=content-type;host;x-amz-date;x-amz-target, Signature=79fd8998d533a73fc286733b0c4e4f7992937b6d9db29f214d54db2481622ab2",
                ),
                ("Content-Length", "0"),
            ],
            "",
        ),
    ];

    #[test]
    fn botocore_signed_requests_are_accepted() {
        let now = at("20261129T212737Z");
        for (secret, pairs, body) in BOTOCORE_REQUESTS {
            let mut headers = header_map(pairs);
            headers.insert("host", HeaderValue::from_static("127.0.0.1:4000"));
            let auth = check(
                &headers,
                "POST",
                body.as_bytes(),
                secret,
                "secretsmanager",
                now,
            )
            .unwrap_or_else(|e| panic!("{secret}: {e}"));
            assert!(auth.access_key_id.starts_with("AKIDBOTO"));
            let mut tampered = body.as_bytes().to_vec();
            tampered.push(b' ');
            assert_eq!(
                check(&headers, "POST", &tampered, secret, "secretsmanager", now).unwrap_err(),
                SigV4Error::Mismatch
            );
        }
    }

    // ---- the official Rust signer ------------------------------------------------------------

    /// SplitMix64: a tiny deterministic generator, enough to vary test inputs reproducibly.
    struct Rng(u64);
    impl Rng {
        fn next(&mut self) -> u64 {
            self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
            let mut z = self.0;
            z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
            z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
            z ^ (z >> 31)
        }
        fn below(&mut self, n: usize) -> usize {
            (self.next() % n as u64) as usize
        }
        fn pick<'a, T: ?Sized>(&mut self, items: &[&'a T]) -> &'a T {
            items[self.below(items.len())]
        }
        /// A string of `min..=max` characters drawn from `alphabet`.
        fn string(&mut self, alphabet: &str, min: usize, max: usize) -> String {
            let chars: Vec<char> = alphabet.chars().collect();
            let len = min + self.below(max - min + 1);
            (0..len).map(|_| chars[self.below(chars.len())]).collect()
        }
    }

    const B64: &str = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    const LOWER: &str = "abcdefghijklmnopqrstuvwxyz0123456789";

    struct Signed {
        headers: HeaderMap,
        body: Vec<u8>,
        secret: String,
        now: SystemTime,
        scope: String,
    }

    fn random_body(rng: &mut Rng) -> Vec<u8> {
        match rng.below(6) {
            0 => Vec::new(),
            1 => (0..rng.below(3000)).map(|_| rng.next() as u8).collect(),
            _ => {
                let value = rng.string("abcXYZ019 _-./+=é☃😀\u{7f}\\\"", 0, 400);
                let value = value.replace('\\', "\\\\").replace('"', "\\\"");
                format!(
                    "{{\"SecretId\": \"{}\", \"SecretString\": \"{value}\"}}",
                    rng.string(LOWER, 1, 30)
                )
                .into_bytes()
            }
        }
    }

    /// Signs a random Secrets Manager call with aws-sigv4's default settings, as the Rust SDK does.
    fn sign_random(rng: &mut Rng) -> Signed {
        let secret = rng.string(B64, 40, 40);
        let akid = format!(
            "AKID{}",
            rng.string("ABCDEFGHIJKLMNOPQRSTUVWXYZ234567", 16, 16)
        );
        let token = (rng.below(3) == 0).then(|| rng.string(B64, 20, 300));
        let region = match rng.below(3) {
            0 => rng.string("abcdefghijklmnopqrstuvwxyz0123456789-", 1, 20),
            _ => rng
                .pick(&[
                    "us-east-1",
                    "eu-central-1",
                    "ap-southeast-2",
                    "us-gov-west-1",
                    "local",
                ])
                .to_owned(),
        };
        let host = rng.pick(&["127.0.0.1:4000", "localhost:4566", "vault.example.com"]);
        let target = format!(
            "secretsmanager.{}",
            rng.pick(&[
                "GetSecretValue",
                "CreateSecret",
                "ListSecrets",
                "PutSecretValue",
                "DeleteSecret"
            ])
        );
        let body = random_body(rng);
        let content_length = body.len().to_string();
        let invocation_id = rng.string("0123456789abcdef", 32, 32);
        let mut pairs: Vec<(&str, &str)> = vec![
            ("content-type", "application/x-amz-json-1.1"),
            ("x-amz-target", &target),
            ("content-length", &content_length),
        ];
        let optional: [(&str, &str); 5] = [
            ("host", host),
            (
                "x-amz-user-agent",
                "aws-sdk-rust/1.3.0 api/secretsmanager/1.0 os/linux",
            ),
            ("amz-sdk-invocation-id", &invocation_id),
            ("amz-sdk-request", "attempt=1; max=3"),
            ("user-agent", "aws-sdk-rust/1.3.0 os/linux lang/rust/1.95.0"),
        ];
        for pair in optional {
            if rng.below(2) == 0 {
                pairs.push(pair);
            }
        }

        let signed_at = 1_500_000_000 + rng.below(2_000_000_000) as u64;
        let signed_at = UNIX_EPOCH + Duration::from_secs(signed_at);
        let instructions = reference_sign(
            (&akid, &secret, token.clone()),
            &region,
            signed_at,
            &format!("http://{host}/"),
            pairs.iter().copied(),
            &body,
        );

        let mut headers = header_map(&pairs);
        if !headers.contains_key("host") {
            headers.insert("host", HeaderValue::from_str(host).unwrap());
        }
        for (name, value) in instructions.headers() {
            headers.insert(
                HeaderName::from_bytes(name.as_bytes()).unwrap(),
                HeaderValue::from_str(value).unwrap(),
            );
        }
        let skew = rng.below(599) as i64 - 299;
        let now = UNIX_EPOCH
            + Duration::from_secs(u64::try_from(unix_seconds(signed_at) + skew).unwrap());
        let scope = format!(
            "{akid}/{}/{region}/secretsmanager/aws4_request",
            &headers["x-amz-date"].to_str().unwrap()[..8]
        );
        Signed {
            headers,
            body,
            secret,
            now,
            scope,
        }
    }

    /// Replaces the byte at `index` of `s` (ASCII) with a different one drawn from `alphabet`.
    fn flip_char(rng: &mut Rng, s: &str, index: usize, alphabet: &str) -> String {
        let mut bytes = s.as_bytes().to_vec();
        let old = bytes[index];
        let choices: Vec<u8> = alphabet.bytes().filter(|&b| b != old).collect();
        bytes[index] = choices[rng.below(choices.len())];
        String::from_utf8(bytes).unwrap()
    }

    #[test]
    fn official_signer_requests_are_accepted_and_every_mutation_rejected() {
        let mut rng = Rng(0x05ee_d0f5_1674);
        let mut mutations = 0;
        for round in 0..400 {
            let s = sign_random(&mut rng);
            let run = |headers: &HeaderMap, body: &[u8]| {
                check(headers, "POST", body, &s.secret, "secretsmanager", s.now)
            };
            run(&s.headers, &s.body)
                .unwrap_or_else(|e| panic!("round {round}: {e}\n{:?}", s.headers));
            let authz = s.headers["authorization"].to_str().unwrap().to_owned();
            let mut expect = |what: &str, headers: &HeaderMap, body: &[u8], codes: &[&str]| {
                let err = run(headers, body)
                    .err()
                    .unwrap_or_else(|| panic!("round {round}: {what} was accepted"));
                assert!(
                    codes.contains(&err.aws_code()),
                    "round {round}: {what}: {} {err}",
                    err.aws_code()
                );
                assert!(
                    !err.message().contains(&s.secret),
                    "round {round}: message leaks the secret"
                );
                mutations += 1;
            };
            let with = |name: &str, value: &str| {
                let mut h = s.headers.clone();
                h.insert(
                    HeaderName::from_bytes(name.as_bytes()).unwrap(),
                    HeaderValue::from_str(value).unwrap(),
                );
                h
            };
            const INVALID: &[&str] = &["InvalidSignatureException"];
            const INCOMPLETE: &[&str] = &["IncompleteSignatureException"];

            // A signed header value (other than the date).
            let signed: Vec<&str> = authz
                .split("SignedHeaders=")
                .nth(1)
                .unwrap()
                .split(',')
                .next()
                .unwrap()
                .split(';')
                .collect();
            let name = rng.pick(
                &signed
                    .iter()
                    .copied()
                    .filter(|n| *n != "x-amz-date")
                    .collect::<Vec<_>>(),
            );
            let value = s.headers[name].to_str().unwrap();
            let index = rng.below(value.len());
            let flipped = flip_char(&mut rng, value, index, LOWER);
            expect(
                &format!("header {name}"),
                &with(name, &flipped),
                &s.body,
                INVALID,
            );

            // The body.
            let mut body = s.body.clone();
            match body.len() {
                0 => body.push(b'x'),
                n => body[rng.below(n)] ^= 1 + rng.below(255) as u8,
            }
            expect("body", &s.headers, &body, INVALID);

            // X-Amz-Date: still a valid time (seconds digit), an invalid month, or any digit.
            let date = s.headers["x-amz-date"].to_str().unwrap();
            expect(
                "date seconds",
                &with("x-amz-date", &flip_char(&mut rng, date, 14, "0123456789")),
                &s.body,
                INVALID,
            );
            expect(
                "date month",
                &with("x-amz-date", &flip_char(&mut rng, date, 4, "23456789")),
                &s.body,
                INCOMPLETE,
            );
            let digit = *rng.pick(&[
                &0usize, &1, &2, &3, &4, &5, &6, &7, &9, &10, &11, &12, &13, &14,
            ]);
            let any = flip_char(&mut rng, date, digit, "0123456789");
            expect(
                "date digit",
                &with("x-amz-date", &any),
                &s.body,
                &["InvalidSignatureException", "IncompleteSignatureException"],
            );

            // The credential scope: date, region, service, terminator.
            let parts: Vec<&str> = s.scope.split('/').collect();
            let offset = parts[0].len() + 1;
            let scope_edits = [
                ("scope date", offset + rng.below(8), "0123456789"),
                (
                    "scope region",
                    offset + 9 + rng.below(parts[2].len()),
                    LOWER,
                ),
                (
                    "scope service",
                    offset + 10 + parts[2].len() + rng.below(14),
                    LOWER,
                ),
                ("scope terminator", s.scope.len() - 1 - rng.below(12), LOWER),
            ];
            for (what, index, alphabet) in scope_edits {
                let scope = flip_char(&mut rng, &s.scope, index, alphabet);
                expect(
                    what,
                    &with("authorization", &authz.replace(&s.scope, &scope)),
                    &s.body,
                    INVALID,
                );
            }

            // The signature: another hex digit, or a character that is not hex at all.
            let sig_at = authz.len() - 1 - rng.below(64);
            expect(
                "signature hex",
                &with(
                    "authorization",
                    &flip_char(&mut rng, &authz, sig_at, "0123456789abcdef"),
                ),
                &s.body,
                INVALID,
            );
            expect(
                "signature char",
                &with("authorization", &flip_char(&mut rng, &authz, sig_at, "g-Z")),
                &s.body,
                INVALID,
            );

            // Dropping x-amz-target from SignedHeaders leaves an unsigned x-amz-* header.
            let dropped = authz.replace(";x-amz-target", "");
            expect(
                "unsigned target",
                &with("authorization", &dropped),
                &s.body,
                INCOMPLETE,
            );
        }
        assert_eq!(mutations, 400 * 12);
    }
}
