//! GetRandomPassword: AWS's password generator, drawing from the OS random number generator.
//!
//! Character classes follow the AWS model: lowercase, uppercase, digits, the 32
//! ASCII punctuation marks, and (only with IncludeSpace) the space. Every draw
//! is uniform (rejection sampling, no modulo bias). With RequireEachIncludedType
//! one character of each included class is placed first, then the whole password
//! is shuffled (Fisher–Yates) so those characters sit at uniform positions. With
//! IncludeSpace the space counts as an included type too, as the service behaves
//! (a short password with IncludeSpace and RequireEachIncludedType contains a space).

use zeroize::Zeroizing;

use crate::crypto::fill_random;

const LOWERCASE: &[u8] = b"abcdefghijklmnopqrstuvwxyz";
const UPPERCASE: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ";
const DIGITS: &[u8] = b"0123456789";
/// Exactly the set the AWS model documents for ExcludePunctuation.
const PUNCTUATION: &[u8] = b"!\"#$%&'()*+,-./:;<=>?@[\\]^_`{|}~";
/// Model limits: PasswordLength 1–4096, ExcludeCharacters up to 4096 characters.
const MAX_LENGTH: u32 = 4096;
const MAX_EXCLUDE_CHARS: usize = 4096;

/// GetRandomPassword's inputs, with AWS's defaults via [`Default`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PasswordSpec {
    /// PasswordLength (1–4096, default 32).
    pub length: u32,
    /// ExcludeCharacters: characters that must not appear.
    pub exclude_characters: String,
    /// ExcludeNumbers.
    pub exclude_numbers: bool,
    /// ExcludePunctuation.
    pub exclude_punctuation: bool,
    /// ExcludeUppercase.
    pub exclude_uppercase: bool,
    /// ExcludeLowercase.
    pub exclude_lowercase: bool,
    /// IncludeSpace (default false).
    pub include_space: bool,
    /// RequireEachIncludedType (default true).
    pub require_each_included_type: bool,
}

impl Default for PasswordSpec {
    fn default() -> Self {
        Self {
            length: 32,
            exclude_characters: String::new(),
            exclude_numbers: false,
            exclude_punctuation: false,
            exclude_uppercase: false,
            exclude_lowercase: false,
            include_space: false,
            require_each_included_type: true,
        }
    }
}

/// Why a password could not be generated; the caller maps it to its AWS error.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PasswordError {
    /// The spec is out of range or unsatisfiable (InvalidParameterException / ValidationException).
    #[error("{0}")]
    InvalidParameter(String),
}

/// Generate a password for `spec`, or say why the spec cannot be met.
pub fn generate_password(spec: &PasswordSpec) -> Result<Zeroizing<String>, PasswordError> {
    if !(1..=MAX_LENGTH).contains(&spec.length) {
        let bound = if spec.length == 0 {
            "greater than or equal to 1"
        } else {
            "less than or equal to 4096"
        };
        return Err(invalid(format!(
            "1 validation error detected: Value '{}' at 'passwordLength' failed to satisfy constraint: Member must have value {bound}",
            spec.length
        )));
    }
    if spec.exclude_characters.chars().count() > MAX_EXCLUDE_CHARS {
        return Err(invalid(
            "1 validation error detected: Value at 'excludeCharacters' failed to satisfy constraint: Member must have length less than or equal to 4096".into(),
        ));
    }
    let allowed = |set: &[u8], included: bool| -> Vec<u8> {
        if !included {
            return Vec::new();
        }
        set.iter()
            .copied()
            .filter(|&c| !spec.exclude_characters.contains(char::from(c)))
            .collect()
    };
    // A class emptied by ExcludeCharacters is treated as excluded, not as unsatisfiable.
    let required: Vec<Vec<u8>> = [
        allowed(LOWERCASE, !spec.exclude_lowercase),
        allowed(UPPERCASE, !spec.exclude_uppercase),
        allowed(DIGITS, !spec.exclude_numbers),
        allowed(PUNCTUATION, !spec.exclude_punctuation),
        allowed(b" ", spec.include_space),
    ]
    .into_iter()
    .filter(|class| !class.is_empty())
    .collect();
    let pool: Vec<u8> = required.concat();
    if pool.is_empty() {
        return Err(invalid("The password can't be generated because every character type or character is excluded.".into()));
    }
    let length = spec.length as usize;
    let must_place = if spec.require_each_included_type {
        required.len()
    } else {
        0
    };
    if length < must_place {
        return Err(invalid(
            "Password length is too short based on the required types.".into(),
        ));
    }

    let mut rng = RandomStream::new();
    // The buffer is sized once, so it never reallocates and leaves copies behind.
    let mut chars = Zeroizing::new(Vec::with_capacity(length));
    for class in &required[..must_place] {
        chars.push(class[rng.below(class.len())]);
    }
    while chars.len() < length {
        chars.push(pool[rng.below(pool.len())]);
    }
    for i in (1..chars.len()).rev() {
        chars.swap(i, rng.below(i + 1));
    }
    let mut password = Zeroizing::new(String::with_capacity(length));
    password.extend(chars.iter().map(|&c| char::from(c)));
    Ok(password)
}

fn invalid(message: String) -> PasswordError {
    PasswordError::InvalidParameter(message)
}

/// Buffered OS randomness: one getrandom call per 64 draws instead of per character.
struct RandomStream {
    buf: Zeroizing<[u8; 256]>,
    pos: usize,
}

impl RandomStream {
    fn new() -> Self {
        let mut buf = Zeroizing::new([0u8; 256]);
        fill_random(&mut buf[..]);
        Self { buf, pos: 0 }
    }

    fn next_u32(&mut self) -> u32 {
        if self.pos + 4 > self.buf.len() {
            fill_random(&mut self.buf[..]);
            self.pos = 0;
        }
        let mut word = [0u8; 4];
        word.copy_from_slice(&self.buf[self.pos..self.pos + 4]);
        self.pos += 4;
        u32::from_le_bytes(word)
    }

    /// Uniform in `0..n` (n ≥ 1): reject the lowest 2^32 mod n values so every residue is equally likely.
    fn below(&mut self, n: usize) -> usize {
        // Callers pass at most 4096 (password length) or 95 (pool size).
        let n = u32::try_from(n).unwrap_or(u32::MAX).max(1);
        let reject_below = n.wrapping_neg() % n;
        loop {
            let x = self.next_u32();
            if x >= reject_below {
                return (x % n) as usize;
            }
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;

    fn spec(f: impl FnOnce(&mut PasswordSpec)) -> PasswordSpec {
        let mut s = PasswordSpec::default();
        f(&mut s);
        s
    }

    fn draws(s: &PasswordSpec, n: usize) -> Vec<String> {
        (0..n)
            .map(|_| generate_password(s).unwrap().to_string())
            .collect()
    }

    #[test]
    fn defaults_match_aws() {
        let d = PasswordSpec::default();
        assert_eq!(
            (d.length, d.include_space, d.require_each_included_type),
            (32, false, true)
        );
        assert!(
            !(d.exclude_numbers
                || d.exclude_punctuation
                || d.exclude_uppercase
                || d.exclude_lowercase)
        );
        assert_eq!(PUNCTUATION.len(), 32);
    }

    #[test]
    fn lengths_are_exact() {
        for length in [1, 2, 4, 5, 32, 100, 4096] {
            let s = spec(|s| {
                s.length = length;
                s.require_each_included_type = length >= 4;
            });
            assert_eq!(generate_password(&s).unwrap().len(), length as usize);
        }
    }

    #[test]
    fn every_included_class_is_present() {
        for length in [4, 5, 8, 32] {
            for p in draws(&spec(|s| s.length = length), 300) {
                assert!(p.bytes().any(|c| c.is_ascii_lowercase()), "{p}");
                assert!(p.bytes().any(|c| c.is_ascii_uppercase()), "{p}");
                assert!(p.bytes().any(|c| c.is_ascii_digit()), "{p}");
                assert!(p.bytes().any(|c| PUNCTUATION.contains(&c)), "{p}");
                assert!(!p.contains(' '));
            }
        }
    }

    #[test]
    fn exclusions_are_honoured() {
        type Forbidden = fn(u8) -> bool;
        let cases: [(PasswordSpec, Forbidden); 6] = [
            (spec(|s| s.exclude_numbers = true), |c| c.is_ascii_digit()),
            (spec(|s| s.exclude_punctuation = true), |c| {
                PUNCTUATION.contains(&c)
            }),
            (spec(|s| s.exclude_uppercase = true), |c| {
                c.is_ascii_uppercase()
            }),
            (spec(|s| s.exclude_lowercase = true), |c| {
                c.is_ascii_lowercase()
            }),
            (
                spec(|s| s.exclude_characters = "aeiouAEIOU0O1lI|\"'`\\".into()),
                |c| b"aeiouAEIOU0O1lI|\"'`\\".contains(&c),
            ),
            (spec(|s| s.include_space = false), |c| c == b' '),
        ];
        for (s, forbidden) in cases {
            let s = PasswordSpec { length: 64, ..s };
            for p in draws(&s, 200) {
                assert!(!p.bytes().any(forbidden), "{s:?} gave {p}");
            }
        }
    }

    #[test]
    fn only_digits_and_space() {
        let s = spec(|s| {
            s.exclude_lowercase = true;
            s.exclude_uppercase = true;
            s.exclude_punctuation = true;
            s.include_space = true;
            s.length = 200;
        });
        let all: String = draws(&s, 50).concat();
        assert!(all.bytes().all(|c| c.is_ascii_digit() || c == b' '));
        assert!(all.contains(' '), "space never drawn in 10,000 characters");
        // Space is a required type when included: two types need two characters.
        let one = spec(|x| {
            *x = PasswordSpec {
                length: 1,
                ..s.clone()
            }
        });
        assert!(generate_password(&one).is_err());
        let two = spec(|x| {
            *x = PasswordSpec {
                length: 2,
                ..s.clone()
            }
        });
        for _ in 0..50 {
            assert!(generate_password(&two).unwrap().contains(' '));
        }
        let free = spec(|x| {
            *x = PasswordSpec {
                length: 1,
                require_each_included_type: false,
                ..s.clone()
            }
        });
        assert_eq!(generate_password(&free).unwrap().len(), 1);
    }

    #[test]
    fn class_emptied_by_exclude_characters_is_not_required() {
        let s = spec(|s| {
            s.exclude_characters = "0123456789".into();
            s.length = 3;
        });
        for p in draws(&s, 100) {
            assert!(!p.bytes().any(|c| c.is_ascii_digit()), "{p}");
        }
    }

    #[test]
    fn draws_are_roughly_uniform() {
        // 10 digits over 100,000 draws: each expects 10,000; ±5% is > 10 standard deviations.
        let s = spec(|s| {
            s.exclude_lowercase = true;
            s.exclude_uppercase = true;
            s.exclude_punctuation = true;
            s.length = 1000;
        });
        let mut counts = [0u32; 10];
        for p in draws(&s, 100) {
            p.bytes().for_each(|c| counts[usize::from(c - b'0')] += 1);
        }
        assert!(
            counts.iter().all(|&n| (9_500..=10_500).contains(&n)),
            "{counts:?}"
        );
    }

    #[test]
    fn required_characters_are_not_stuck_at_the_front() {
        // Exactly four characters, one per class: every class must show up at position 0 sometimes.
        let mut first_positions = std::collections::HashSet::new();
        for p in draws(&spec(|s| s.length = 4), 400) {
            let c = p.as_bytes()[0];
            first_positions.insert((
                c.is_ascii_lowercase(),
                c.is_ascii_uppercase(),
                c.is_ascii_digit(),
            ));
        }
        assert_eq!(first_positions.len(), 4);
    }

    #[test]
    fn passwords_differ() {
        let p = draws(&PasswordSpec::default(), 2);
        assert_ne!(p[0], p[1]);
    }

    #[test]
    fn invalid_specs_are_rejected() {
        let err = |s: PasswordSpec| match generate_password(&s) {
            Err(PasswordError::InvalidParameter(m)) => m,
            Ok(_) => String::new(),
        };
        assert!(err(spec(|s| s.length = 0)).contains("greater than or equal to 1"));
        assert!(err(spec(|s| s.length = 4097)).contains("less than or equal to 4096"));
        assert!(
            err(spec(|s| s.exclude_characters = "x".repeat(4097))).contains("excludeCharacters")
        );
        assert_eq!(
            err(spec(|s| s.length = 3)),
            "Password length is too short based on the required types."
        );
        let everything = spec(|s| {
            s.exclude_numbers = true;
            s.exclude_punctuation = true;
            s.exclude_uppercase = true;
            s.exclude_lowercase = true;
        });
        assert!(err(everything.clone()).contains("excluded"));
        assert!(
            err(spec(|s| *s = PasswordSpec {
                include_space: true,
                exclude_characters: " ".into(),
                ..everything
            }))
            .contains("excluded")
        );
        let every_char: String = [LOWERCASE, UPPERCASE, DIGITS, PUNCTUATION]
            .concat()
            .iter()
            .map(|&c| char::from(c))
            .collect();
        assert!(err(spec(|s| s.exclude_characters = every_char)).contains("excluded"));
        // Without RequireEachIncludedType short passwords are fine.
        assert!(
            generate_password(&spec(|s| {
                s.length = 1;
                s.require_each_included_type = false;
            }))
            .is_ok()
        );
    }

    #[test]
    fn below_stays_in_range() {
        let mut rng = RandomStream::new();
        for n in [1usize, 2, 3, 7, 95, 4096] {
            for _ in 0..200 {
                assert!(rng.below(n) < n);
            }
        }
    }
}
