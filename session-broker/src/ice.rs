//! The STUN and TURN servers the broker hands to players and hosts, with short-lived TURN
//! credentials in the TURN REST scheme that coturn implements (`use-auth-secret`): the
//! username is `<expiry, Unix s>:<who>`, the credential base64(HMAC-SHA1(secret, username)).
//! A TURN server sharing the secret checks them without asking the broker.

use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use gridplay_protocol::IceServer;
use ring::hmac;

use crate::BrokerError;

/// STUN and TURN servers, and the secret TURN credentials are made with.
#[derive(Clone)]
pub struct IceConfig {
    stun: Vec<String>,
    turn: Vec<String>,
    secret: Option<hmac::Key>,
    ttl: Duration,
}

impl std::fmt::Debug for IceConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("IceConfig")
            .field("stun", &self.stun)
            .field("turn", &self.turn)
            .field("ttl", &self.ttl)
            .finish_non_exhaustive()
    }
}

impl IceConfig {
    /// STUN servers `stun` (`stun:host:port`), TURN servers `turn` (`turn:host:port…`) whose
    /// credentials are made with `secret` and last `ttl`. TURN servers need a secret.
    pub fn new(
        stun: Vec<String>,
        turn: Vec<String>,
        secret: Option<&[u8]>,
        ttl: Duration,
    ) -> Result<Self, BrokerError> {
        let bad = |m: String| Err(BrokerError::BadRequest(m));
        if let Some(url) = stun.iter().find(|u| !u.starts_with("stun:") && !u.starts_with("stuns:"))
        {
            return bad(format!("{url}: a STUN server's URL starts with stun: or stuns:"));
        }
        if let Some(url) = turn.iter().find(|u| !u.starts_with("turn:") && !u.starts_with("turns:"))
        {
            return bad(format!("{url}: a TURN server's URL starts with turn: or turns:"));
        }
        if !turn.is_empty() && secret.is_none_or(<[u8]>::is_empty) {
            return bad("TURN servers need the secret they share with the broker".into());
        }
        if ttl.is_zero() {
            return bad("TURN credentials must last longer than 0 s".into());
        }
        let secret = secret.map(|s| hmac::Key::new(hmac::HMAC_SHA1_FOR_LEGACY_USE_ONLY, s));
        Ok(Self { stun, turn, secret, ttl })
    }

    /// The servers for `who` (a session or a host) at `now_ms`: the STUN servers, and the
    /// TURN servers with credentials that expire `ttl` from now.
    pub fn servers(&self, who: &str, now_ms: u64) -> Vec<IceServer> {
        let mut servers = Vec::new();
        if !self.stun.is_empty() {
            servers.push(IceServer { urls: self.stun.clone(), username: None, credential: None });
        }
        if let (false, Some(secret)) = (self.turn.is_empty(), &self.secret) {
            let expires_s = (now_ms / 1000).saturating_add(self.ttl.as_secs().max(1));
            let username = format!("{expires_s}:{who}");
            let credential = STANDARD.encode(hmac::sign(secret, username.as_bytes()));
            servers.push(IceServer {
                urls: self.turn.clone(),
                username: Some(username),
                credential: Some(credential),
            });
        }
        servers
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn turn_credentials_follow_the_rest_scheme() {
        let ice = IceConfig::new(
            vec!["stun:turn.example:3478".into()],
            vec!["turn:turn.example:3478?transport=udp".into()],
            Some(b"north"),
            Duration::from_secs(3600),
        )
        .unwrap();
        let servers = ice.servers("session-1", 1_700_000_000_123);
        assert_eq!(servers[0].urls, ["stun:turn.example:3478"]);
        assert_eq!(servers[0].username, None);
        let turn = &servers[1];
        assert_eq!(turn.username.as_deref(), Some("1700003600:session-1"));
        // HMAC-SHA1("north", "1700003600:session-1"), as `openssl dgst -sha1 -hmac north -binary | base64` gives it.
        assert_eq!(turn.credential.as_deref(), Some("MUIr7KLVICV8xcOnmyynSYHPQJ4="));
    }

    #[test]
    fn bad_settings_are_refused() {
        let ttl = Duration::from_secs(60);
        assert!(IceConfig::new(vec!["turn:x".into()], vec![], None, ttl).is_err());
        assert!(IceConfig::new(vec![], vec!["stun:x".into()], Some(b"s"), ttl).is_err());
        assert!(IceConfig::new(vec![], vec!["turn:x".into()], None, ttl).is_err());
        assert!(IceConfig::new(vec![], vec!["turn:x".into()], Some(b""), ttl).is_err());
        assert!(IceConfig::new(vec![], vec![], None, Duration::ZERO).is_err());
        let stun_only = IceConfig::new(vec!["stun:x".into()], vec![], None, ttl).unwrap();
        assert_eq!(stun_only.servers("s", 0).len(), 1);
    }
}
