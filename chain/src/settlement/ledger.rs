//! The local settlement ledger: an append-only JSON-lines file of signed
//! epoch roots and of their submissions. Submitting is idempotent: a root
//! already on chain (say, the process died between sending and recording) is
//! recorded, not sent again.

use std::fs::{File, OpenOptions};
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};

use alloy::primitives::{B256, Signature};
use alloy::signers::SignerSync;
use alloy::signers::local::PrivateKeySigner;
use serde::{Deserialize, Serialize};

use super::SettlementClient;
use super::sections::Sections;
use crate::{Error, keccak256};

/// An epoch root the operator signed, waiting to be committed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LedgerEpoch {
    /// Root of the epoch's tree.
    pub root: B256,
    /// Leaves in the blocks section.
    pub blocks: u32,
    /// Leaves in the hosts section.
    pub hosts: u32,
    /// Leaves in the players section.
    pub players: u32,
    /// Sum of the blocks' amounts, wei (a decimal string in the file).
    #[serde(with = "amount")]
    pub total: u128,
    /// The operator's signature over `keccak256(root ‖ blocks ‖ hosts ‖ players ‖ total)`.
    pub signature: Signature,
}

/// A root that reached the chain.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Submission {
    /// The root.
    pub root: B256,
    /// The epoch id the contract gave it.
    pub epoch_id: u64,
    /// The committing transaction, if this process sent it.
    pub tx: Option<B256>,
}

#[derive(Debug, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
enum Entry {
    Epoch(LedgerEpoch),
    Submitted(Submission),
}

mod amount {
    use serde::{Deserialize, Deserializer, Serializer};
    pub fn serialize<S: Serializer>(v: &u128, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&v.to_string())
    }
    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<u128, D::Error> {
        String::deserialize(d)?.parse().map_err(serde::de::Error::custom)
    }
}

impl LedgerEpoch {
    /// Signs an epoch's commit arguments.
    pub fn sign(operator: &PrivateKeySigner, epoch: &Sections) -> Result<Self, Error> {
        let (root, blocks, hosts, players, total) = epoch.commit_args();
        let unsigned = Self { root, blocks, hosts, players, total, signature: placeholder() };
        let signature =
            operator.sign_hash_sync(&unsigned.digest()).map_err(|e| Error::Chain(e.to_string()))?;
        Ok(Self { signature, ..unsigned })
    }

    /// The address that signed it.
    pub fn signer(&self) -> Result<alloy::primitives::Address, Error> {
        self.signature
            .recover_address_from_prehash(&self.digest())
            .map_err(|e| Error::Ledger(format!("bad epoch signature: {e}")))
    }

    /// `keccak256(root ‖ blocks ‖ hosts ‖ players ‖ total)`, big-endian.
    fn digest(&self) -> B256 {
        let mut bytes = self.root.to_vec();
        for n in [self.blocks, self.hosts, self.players] {
            bytes.extend_from_slice(&n.to_be_bytes());
        }
        bytes.extend_from_slice(&self.total.to_be_bytes());
        B256::from(keccak256(&bytes))
    }
}

/// A signature to be replaced before anyone reads it.
fn placeholder() -> Signature {
    Signature::new(alloy::primitives::U256::ZERO, alloy::primitives::U256::ZERO, false)
}

/// The ledger file.
#[derive(Debug, Clone)]
pub struct Ledger {
    path: PathBuf,
}

impl Ledger {
    /// A ledger at `path` (created on first append).
    pub fn new(path: impl AsRef<Path>) -> Self {
        Self { path: path.as_ref().to_owned() }
    }

    fn entries(&self) -> Result<Vec<Entry>, Error> {
        let file = match File::open(&self.path) {
            Ok(file) => file,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => return Err(Error::Ledger(e.to_string())),
        };
        let mut entries = Vec::new();
        for (n, line) in BufReader::new(file).lines().enumerate() {
            let line = line.map_err(|e| Error::Ledger(e.to_string()))?;
            if line.trim().is_empty() {
                continue;
            }
            let entry = serde_json::from_str(&line)
                .map_err(|e| Error::Ledger(format!("{}:{}: {e}", self.path.display(), n + 1)))?;
            entries.push(entry);
        }
        Ok(entries)
    }

    fn append(&self, entry: &Entry) -> Result<(), Error> {
        let mut file = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.path)
            .map_err(|e| Error::Ledger(e.to_string()))?;
        let mut line = serde_json::to_string(entry).map_err(|e| Error::Ledger(e.to_string()))?;
        line.push('\n');
        file.write_all(line.as_bytes())
            .and_then(|()| file.sync_data())
            .map_err(|e| Error::Ledger(e.to_string()))
    }

    /// Records a signed epoch root.
    pub fn append_epoch(&self, epoch: LedgerEpoch) -> Result<(), Error> {
        self.append(&Entry::Epoch(epoch))
    }

    /// Epoch roots not yet submitted, oldest first.
    pub fn pending(&self) -> Result<Vec<LedgerEpoch>, Error> {
        let entries = self.entries()?;
        let submitted: Vec<B256> = entries
            .iter()
            .filter_map(|e| match e {
                Entry::Submitted(s) => Some(s.root),
                Entry::Epoch(_) => None,
            })
            .collect();
        Ok(entries
            .into_iter()
            .filter_map(|e| match e {
                Entry::Epoch(epoch) if !submitted.contains(&epoch.root) => Some(epoch),
                _ => None,
            })
            .collect())
    }

    /// Every submission recorded.
    pub fn submissions(&self) -> Result<Vec<Submission>, Error> {
        Ok(self
            .entries()?
            .into_iter()
            .filter_map(|e| match e {
                Entry::Submitted(s) => Some(s),
                Entry::Epoch(_) => None,
            })
            .collect())
    }
}

/// How many of the latest on-chain epochs are checked for a root before sending it.
const LOOKBACK: u64 = 64;

/// Submits every pending epoch root, exactly once, and records each.
pub async fn settle(ledger: &Ledger, client: &SettlementClient) -> Result<Vec<Submission>, Error> {
    let mut done = Vec::new();
    for epoch in ledger.pending()? {
        let count = client.epoch_count().await?;
        let mut already = None;
        for id in (count.saturating_sub(LOOKBACK)..count).rev() {
            if client.epoch(id).await?.0 == epoch.root {
                already = Some(id);
                break;
            }
        }
        let submission = match already {
            Some(epoch_id) => Submission { root: epoch.root, epoch_id, tx: None },
            None => {
                let (epoch_id, tx) = client
                    .commit_raw(epoch.root, epoch.blocks, epoch.hosts, epoch.players, epoch.total)
                    .await?;
                Submission { root: epoch.root, epoch_id, tx: Some(tx) }
            }
        };
        ledger.append(&Entry::Submitted(submission.clone()))?;
        done.push(submission);
    }
    Ok(done)
}

#[cfg(test)]
mod tests {
    use super::super::PlayerLeaf;
    use super::*;

    #[test]
    fn pending_roots_survive_reopening_and_signatures_recover() {
        let dir = std::env::temp_dir().join(format!("gridplay-ledger-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("ledger.jsonl");
        let _ = std::fs::remove_file(&path);
        let operator = PrivateKeySigner::random();
        let ledger = Ledger::new(&path);
        assert!(ledger.pending().unwrap().is_empty());
        let sections = |n: u8| {
            let player = PlayerLeaf {
                player: alloy::primitives::Address::repeat_byte(n),
                cumulative: alloy::primitives::U256::from(n),
            };
            Sections::from_sections(Vec::new(), Vec::new(), vec![player]).unwrap()
        };
        let most = crate::Leaf {
            session_id: [1; 32],
            block_index: 0,
            player: [2; 20],
            host: [3; 20],
            amount: u128::MAX,
            probe_summary_hash: [4; 32],
        };
        let a = Sections::build(&[most], &std::collections::BTreeMap::new()).unwrap();
        let a = LedgerEpoch::sign(&operator, &a).unwrap();
        let b = LedgerEpoch::sign(&operator, &sections(2)).unwrap();
        ledger.append_epoch(a.clone()).unwrap();
        ledger.append_epoch(b.clone()).unwrap();
        ledger
            .append(&Entry::Submitted(Submission { root: a.root, epoch_id: 0, tx: None }))
            .unwrap();
        let reopened = Ledger::new(&path);
        assert_eq!(reopened.pending().unwrap(), vec![b.clone()]);
        assert_eq!(b.signer().unwrap(), operator.address());
        assert!(std::fs::read_to_string(&path).unwrap().contains(&u128::MAX.to_string()));
        std::fs::write(&path, "{not json\n").unwrap();
        assert!(matches!(reopened.pending(), Err(Error::Ledger(_))));
        let _ = std::fs::remove_dir_all(dir);
    }
}
