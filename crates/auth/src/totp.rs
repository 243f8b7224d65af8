//! Time-based one-time passwords (RFC 6238) for virtual MFA devices.
//!
//! `GetSessionToken` with `SerialNumber`/`TokenCode`, `EnableMFADevice` (two
//! consecutive codes) and MFA-protected `AssumeRole` all check a 6-digit code from
//! an authenticator app. This module generates the device seed (20 random bytes,
//! shown to the user as the base32 `Base32StringSeed` of `CreateVirtualMFADevice`),
//! computes HOTP/TOTP codes (HMAC-SHA-1, 30-second steps) and verifies a code within
//! ±1 step. The caller stores the last counter it accepted and passes it back in, so
//! a code can never be used twice ([`verify`] only accepts a later counter).

use std::fmt;

use hmac::{Hmac, KeyInit, Mac};
use rand::Rng;
use sha1::Sha1;
use subtle::ConstantTimeEq;
use zeroize::Zeroizing;

/// Seconds per time step.
pub const STEP_SECS: u64 = 30;
/// Digits in a code.
pub const DIGITS: u32 = 6;
/// Steps accepted on either side of the current one.
pub const WINDOW: u64 = 1;
/// Seed length in bytes (160 bits, as RFC 4226 recommends).
pub const SEED_LEN: usize = 20;

/// Why a code was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum TotpError {
    /// The code is not 6 ASCII digits.
    #[error("the MFA code must be 6 digits")]
    Malformed,
    /// No step within the window produces this code.
    #[error("the MFA code is not valid")]
    Invalid,
    /// The code matches, but its step was already used (replay).
    #[error("the MFA code has already been used")]
    Replayed,
    /// The seed is not valid base32.
    #[error("the MFA seed is not valid base32")]
    BadSeed,
}

/// A TOTP seed (shared secret). `Debug` is redacted; memory is wiped on drop.
#[derive(Clone, PartialEq, Eq)]
pub struct TotpSeed(Zeroizing<Vec<u8>>);

impl TotpSeed {
    /// A fresh 20-byte seed from the thread-local CSPRNG.
    pub fn generate() -> Self {
        let mut bytes = Zeroizing::new(vec![0u8; SEED_LEN]);
        rand::rng().fill_bytes(&mut bytes);
        Self(bytes)
    }

    /// Wraps raw seed bytes (e.g. after unsealing from the store).
    pub fn from_bytes(bytes: impl Into<Vec<u8>>) -> Self {
        Self(Zeroizing::new(bytes.into()))
    }

    /// Parses RFC 4648 base32 (upper or lower case, padding optional, spaces ignored).
    pub fn from_base32(s: &str) -> Result<Self, TotpError> {
        let mut cleaned: String = s
            .chars()
            .filter(|c| !c.is_whitespace() && *c != '=')
            .map(|c| c.to_ascii_uppercase())
            .collect();
        let pad = (8 - cleaned.len() % 8) % 8;
        cleaned.extend(std::iter::repeat_n('=', pad));
        let bytes = data_encoding::BASE32
            .decode(cleaned.as_bytes())
            .map_err(|_| TotpError::BadSeed)?;
        if bytes.is_empty() {
            return Err(TotpError::BadSeed);
        }
        Ok(Self::from_bytes(bytes))
    }

    /// The raw seed bytes (to seal at rest). Do not log.
    pub fn expose(&self) -> &[u8] {
        &self.0
    }

    /// RFC 4648 base32 without padding, as `CreateVirtualMFADevice` returns in
    /// `Base32StringSeed` (32 characters for a 20-byte seed).
    pub fn to_base32(&self) -> String {
        data_encoding::BASE32_NOPAD.encode(&self.0)
    }

    /// An `otpauth://` URI for QR codes (`QRCodePNG` content).
    pub fn otpauth_uri(&self, issuer: &str, account: &str) -> String {
        use percent_encoding::{NON_ALPHANUMERIC, utf8_percent_encode};
        let issuer_enc = utf8_percent_encode(issuer, NON_ALPHANUMERIC);
        let account_enc = utf8_percent_encode(account, NON_ALPHANUMERIC);
        format!(
            "otpauth://totp/{issuer_enc}:{account_enc}?secret={}&issuer={issuer_enc}&algorithm=SHA1&digits={DIGITS}&period={STEP_SECS}",
            self.to_base32()
        )
    }
}

impl fmt::Debug for TotpSeed {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("TotpSeed(<redacted>)")
    }
}

/// HOTP (RFC 4226) with HMAC-SHA-1: the `digits`-digit code for `counter`.
pub fn hotp(seed: &[u8], counter: u64, digits: u32) -> u32 {
    let Ok(mut mac) = <Hmac<Sha1> as KeyInit>::new_from_slice(seed) else {
        // HMAC takes keys of any length; unreachable.
        return 0;
    };
    mac.update(&counter.to_be_bytes());
    let h = mac.finalize().into_bytes();
    let offset = usize::from(h[h.len() - 1] & 0x0f);
    let bin = (u32::from(h[offset] & 0x7f) << 24)
        | (u32::from(h[offset + 1]) << 16)
        | (u32::from(h[offset + 2]) << 8)
        | u32::from(h[offset + 3]);
    bin % 10u32.pow(digits.min(9))
}

/// The time-step counter for a Unix time in seconds.
pub fn counter_at(unix_secs: u64) -> u64 {
    unix_secs / STEP_SECS
}

/// The 6-digit code for `counter`, zero-padded.
pub fn code_for_counter(seed: &TotpSeed, counter: u64) -> String {
    format!("{:06}", hotp(seed.expose(), counter, DIGITS))
}

/// The current 6-digit code at `unix_secs`.
pub fn code_at(seed: &TotpSeed, unix_secs: u64) -> String {
    code_for_counter(seed, counter_at(unix_secs))
}

fn parse_code(code: &str) -> Result<u32, TotpError> {
    let code = code.trim();
    if code.len() != DIGITS as usize || !code.bytes().all(|b| b.is_ascii_digit()) {
        return Err(TotpError::Malformed);
    }
    code.parse().map_err(|_| TotpError::Malformed)
}

/// Finds the counter in `[center - window, center + window]` whose code is `code`,
/// checking every candidate (no early exit) and comparing in constant time.
fn find_counter(seed: &TotpSeed, code: u32, center: u64, window: u64) -> Option<u64> {
    let mut found = None;
    let lo = center.saturating_sub(window);
    let hi = center.saturating_add(window);
    let mut c = lo;
    while c <= hi {
        let candidate = hotp(seed.expose(), c, DIGITS);
        if bool::from(candidate.ct_eq(&code)) && found.is_none() {
            found = Some(c);
        }
        if c == u64::MAX {
            break;
        }
        c += 1;
    }
    found
}

/// Verifies a 6-digit `code` at `unix_secs`, allowing ±1 step.
///
/// `last_used` is the counter of the last code this device accepted (stored by the
/// caller); a code whose counter is not strictly later is refused as a replay. On
/// success returns the matched counter, which the caller must store as the new
/// `last_used` before acting on the code.
pub fn verify(
    seed: &TotpSeed,
    code: &str,
    unix_secs: u64,
    last_used: Option<u64>,
) -> Result<u64, TotpError> {
    let code = parse_code(code)?;
    let center = counter_at(unix_secs);
    let lo = center.saturating_sub(WINDOW);
    let hi = center.saturating_add(WINDOW);
    // Prefer the earliest matching counter later than `last_used`.
    let mut matched_any = false;
    let mut result = None;
    let mut c = lo;
    while c <= hi {
        if bool::from(hotp(seed.expose(), c, DIGITS).ct_eq(&code)) {
            matched_any = true;
            if result.is_none() && last_used.is_none_or(|l| c > l) {
                result = Some(c);
            }
        }
        c += 1;
    }
    match result {
        Some(c) => Ok(c),
        None if matched_any => Err(TotpError::Replayed),
        None => Err(TotpError::Invalid),
    }
}

/// Verifies two consecutive codes, as `EnableMFADevice` requires
/// (`AuthenticationCode1`, `AuthenticationCode2`), searching `window_steps` steps
/// either side of now (device clocks may drift). Returns the counter of the second
/// code, to store as the device's last used counter.
pub fn verify_consecutive(
    seed: &TotpSeed,
    code1: &str,
    code2: &str,
    unix_secs: u64,
    window_steps: u64,
) -> Result<u64, TotpError> {
    let c1 = parse_code(code1)?;
    let c2 = parse_code(code2)?;
    let center = counter_at(unix_secs);
    let Some(first) = find_counter(seed, c1, center, window_steps) else {
        return Err(TotpError::Invalid);
    };
    let second = first.saturating_add(1);
    if bool::from(hotp(seed.expose(), second, DIGITS).ct_eq(&c2)) {
        Ok(second)
    } else {
        Err(TotpError::Invalid)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
    use super::*;

    const RFC_SEED: &[u8] = b"12345678901234567890";

    /// RFC 4226 Appendix D.
    #[test]
    fn rfc4226_hotp_vectors() {
        let expected = [
            755224, 287082, 359152, 969429, 338314, 254676, 287922, 162583, 399871, 520489,
        ];
        for (i, e) in expected.iter().enumerate() {
            assert_eq!(hotp(RFC_SEED, i as u64, 6), *e, "counter {i}");
        }
    }

    /// RFC 6238 Appendix B, SHA-1 column (8 digits), and the same codes truncated to
    /// 6 digits as authenticator apps show them.
    #[test]
    fn rfc6238_totp_vectors() {
        let vectors: [(u64, u32); 6] = [
            (59, 94287082),
            (1111111109, 7081804),
            (1111111111, 14050471),
            (1234567890, 89005924),
            (2000000000, 69279037),
            (20000000000, 65353130),
        ];
        let seed = TotpSeed::from_bytes(RFC_SEED);
        for (t, code8) in vectors {
            assert_eq!(hotp(RFC_SEED, counter_at(t), 8), code8, "time {t}");
            assert_eq!(code_at(&seed, t), format!("{:06}", code8 % 1_000_000));
        }
        assert_eq!(code_at(&seed, 1111111109), "081804");
    }

    #[test]
    fn verify_window_and_replay() {
        let seed = TotpSeed::from_bytes(RFC_SEED);
        let t = 1111111111;
        let c = counter_at(t);
        let now_code = code_at(&seed, t);
        assert_eq!(verify(&seed, &now_code, t, None), Ok(c));
        // previous and next steps accepted
        let prev = code_for_counter(&seed, c - 1);
        let next = code_for_counter(&seed, c + 1);
        assert_eq!(verify(&seed, &prev, t, None), Ok(c - 1));
        assert_eq!(verify(&seed, &next, t, None), Ok(c + 1));
        // two steps away refused
        let far = code_for_counter(&seed, c + 2);
        assert_eq!(verify(&seed, &far, t, None), Err(TotpError::Invalid));
        // replay refused
        assert_eq!(
            verify(&seed, &now_code, t, Some(c)),
            Err(TotpError::Replayed)
        );
        assert_eq!(verify(&seed, &prev, t, Some(c)), Err(TotpError::Replayed));
        // a later code after an earlier use is fine
        assert_eq!(verify(&seed, &next, t, Some(c)), Ok(c + 1));
        // malformed
        assert_eq!(verify(&seed, "12345", t, None), Err(TotpError::Malformed));
        assert_eq!(verify(&seed, "12345a", t, None), Err(TotpError::Malformed));
        assert_eq!(verify(&seed, "+12345", t, None), Err(TotpError::Malformed));
    }

    #[test]
    fn consecutive_codes() {
        let seed = TotpSeed::generate();
        let t = 1_700_000_000;
        let c = counter_at(t);
        let a = code_for_counter(&seed, c - 3);
        let b = code_for_counter(&seed, c - 2);
        assert_eq!(verify_consecutive(&seed, &a, &b, t, 10), Ok(c - 2));
        assert_eq!(
            verify_consecutive(&seed, &b, &a, t, 10),
            Err(TotpError::Invalid)
        );
    }

    #[test]
    fn seed_generation_and_base32() {
        let s = TotpSeed::generate();
        assert_eq!(s.expose().len(), SEED_LEN);
        let b32 = s.to_base32();
        assert_eq!(b32.len(), 32);
        assert!(
            b32.bytes()
                .all(|b| b.is_ascii_uppercase() || (b'2'..=b'7').contains(&b))
        );
        assert_eq!(TotpSeed::from_base32(&b32).unwrap(), s);
        assert_eq!(TotpSeed::from_base32(&b32.to_lowercase()).unwrap(), s);
        assert_ne!(TotpSeed::generate(), s);
        // RFC 4648 test vector
        assert_eq!(
            TotpSeed::from_bytes(b"foobar".to_vec()).to_base32(),
            "MZXW6YTBOI"
        );
        assert_eq!(
            TotpSeed::from_base32("MZXW6YTBOI======").unwrap().expose(),
            b"foobar"
        );
        assert!(TotpSeed::from_base32("not base32!").is_err());
        assert!(!format!("{s:?}").contains(&b32));
        let uri = s.otpauth_uri("Gatehouse", "alice@111122223333");
        assert!(uri.starts_with("otpauth://totp/Gatehouse:alice%40111122223333?secret="));
    }
}
