//! V2's session tokens: `PUT /latest/api/token` with `X-metadata-token-ttl-seconds`
//! gives one, valid for that many seconds. Firecracker encrypts the expiry into the token
//! (AES-GCM) so it keeps nothing; we keep a bounded table of random tokens instead, which
//! needs no cipher in the binary. As in Firecracker, tokens do not survive a snapshot.

use std::time::{Duration, Instant};

/// Firecracker's bounds on a token's lifetime, in seconds.
pub const MIN_TTL: u32 = 1;
pub const MAX_TTL: u32 = 21600;
/// Live tokens kept: a guest asking for more loses its oldest ones first.
const MAX_TOKENS: usize = 1024;
/// Random bytes per token (shown in hex).
const TOKEN_BYTES: usize = 32;

#[derive(Debug, thiserror::Error)]
pub enum TokenError {
    #[error(
        "Invalid time to live value provided for token: {0}. Please provide a value between {MIN_TTL} and {MAX_TTL}."
    )]
    InvalidTtl(u32),
    #[error("Failed to generate a token: {0}")]
    Random(#[source] std::io::Error),
}

#[derive(Default)]
pub struct Tokens {
    live: Vec<(String, Instant)>,
}

impl Tokens {
    pub fn generate(&mut self, ttl: u32) -> Result<String, TokenError> {
        if !(MIN_TTL..=MAX_TTL).contains(&ttl) {
            return Err(TokenError::InvalidTtl(ttl));
        }
        let mut bytes = [0u8; TOKEN_BYTES];
        random(&mut bytes).map_err(TokenError::Random)?;
        let token: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
        let now = Instant::now();
        self.live.retain(|(_, expiry)| *expiry > now);
        if self.live.len() >= MAX_TOKENS {
            // Oldest first: they were pushed in order.
            self.live.remove(0);
        }
        self.live.push((token.clone(), now + Duration::from_secs(ttl.into())));
        Ok(token)
    }

    pub fn is_valid(&self, token: &str) -> bool {
        let now = Instant::now();
        self.live.iter().any(|(t, expiry)| t == token && *expiry > now)
    }
}

/// getrandom(2), which the virtio thread's filter allows (random MAC addresses use it).
pub fn random(buf: &mut [u8]) -> std::io::Result<()> {
    let mut filled = 0;
    while filled < buf.len() {
        let rest = &mut buf[filled..];
        // SAFETY: the kernel writes at most `rest.len()` bytes into `rest`, which we own.
        let n = unsafe { libc::getrandom(rest.as_mut_ptr().cast(), rest.len(), 0) };
        if n < 0 {
            let e = std::io::Error::last_os_error();
            if e.kind() != std::io::ErrorKind::Interrupted {
                return Err(e);
            }
            continue;
        }
        filled += n as usize;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_are_random_checked_and_bounded() {
        let mut tokens = Tokens::default();
        let a = tokens.generate(60).unwrap();
        let b = tokens.generate(60).unwrap();
        assert_eq!(a.len(), 2 * TOKEN_BYTES);
        assert_ne!(a, b);
        assert!(tokens.is_valid(&a) && tokens.is_valid(&b));
        assert!(!tokens.is_valid("0123") && !tokens.is_valid(""));
        assert!(matches!(tokens.generate(0), Err(TokenError::InvalidTtl(0))));
        assert!(matches!(tokens.generate(MAX_TTL + 1), Err(TokenError::InvalidTtl(21601))));
        for _ in 0..MAX_TOKENS {
            tokens.generate(60).unwrap();
        }
        assert!(!tokens.is_valid(&a), "the oldest token made room");
        assert_eq!(tokens.live.len(), MAX_TOKENS);
    }

    #[test]
    fn an_expired_token_is_refused() {
        let mut tokens = Tokens::default();
        let t = tokens.generate(1).unwrap();
        tokens.live[0].1 = Instant::now() - Duration::from_millis(1);
        assert!(!tokens.is_valid(&t));
    }
}
