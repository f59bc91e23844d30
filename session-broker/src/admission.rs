//! Which hosts a broker admits: every host that signs its requests, or only those whose
//! keys an operator listed (the trusted-parties mode, `gridplay broker --admit-hosts FILE`).

use std::collections::BTreeSet;

use gridplay_protocol::token::{decode_public_key, encode_public_key};

/// The host ids an admission file lists: one base64url ed25519 public key per line (as
/// `gridplay host` logs its id at start); blank lines and `#` comments are skipped. A line that is
/// not a key is refused as `FILE:LINE: reason`.
pub fn parse_admitted_hosts(file: &str, text: &str) -> Result<BTreeSet<String>, String> {
    let mut hosts = BTreeSet::new();
    for (number, line) in text.lines().enumerate() {
        let line = line.split('#').next().unwrap_or_default().trim();
        if line.is_empty() {
            continue;
        }
        let key = decode_public_key(line)
            .map_err(|e| format!("{file}:{}: not a host key ({e}): {line}", number + 1))?;
        hosts.insert(encode_public_key(&key));
    }
    Ok(hosts)
}

#[cfg(test)]
mod tests {
    use ed25519_dalek::SigningKey;

    use super::*;

    #[test]
    fn an_admission_file_lists_keys_and_refuses_anything_else_with_its_line() {
        let key = encode_public_key(&SigningKey::from_bytes(&[9; 32]).verifying_key());
        let text = format!("# the hosts we trust\n\n{key}  # the lab box\n{key}\n");
        assert_eq!(parse_admitted_hosts("hosts.txt", &text), Ok(BTreeSet::from([key.clone()])));
        let bad = format!("{key}\nnot-a-key\n");
        let error = parse_admitted_hosts("hosts.txt", &bad).unwrap_err();
        assert!(error.starts_with("hosts.txt:2: not a host key"), "{error}");
        assert_eq!(parse_admitted_hosts("hosts.txt", ""), Ok(BTreeSet::new()));
    }
}
