//! An append-only JSON-lines file: what the settler must not lose across a
//! restart, one record per line, replayed on start and rewritten compactly.

use std::fs::{File, OpenOptions};
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};

use serde::Serialize;
use serde::de::DeserializeOwned;

/// The journal file, open for appending.
pub(crate) struct Journal {
    path: PathBuf,
    file: File,
    /// Records appended since the file was last rewritten.
    pub(crate) appended: usize,
}

impl Journal {
    /// Opens (or creates) the journal at `path` and reads its records. A last line cut short
    /// by a crash is dropped (and the file rewritten without it); any other unreadable line
    /// is an error.
    pub(crate) fn open<E: Serialize + DeserializeOwned>(
        path: &Path,
    ) -> std::io::Result<(Self, Vec<E>)> {
        let mut records = Vec::new();
        let mut torn = false;
        if path.exists() {
            let lines: Vec<String> =
                BufReader::new(File::open(path)?).lines().collect::<Result<_, _>>()?;
            for (i, line) in lines.iter().enumerate() {
                match serde_json::from_str(line) {
                    Ok(record) => records.push(record),
                    Err(_) if i + 1 == lines.len() => torn = true,
                    Err(e) => {
                        let why = format!("{} line {}: {e}", path.display(), i + 1);
                        return Err(std::io::Error::new(std::io::ErrorKind::InvalidData, why));
                    }
                }
            }
        }
        let file = OpenOptions::new().create(true).append(true).open(path)?;
        let mut journal = Self { path: path.to_owned(), file, appended: 0 };
        if torn {
            journal.rewrite(&records)?;
        }
        Ok((journal, records))
    }

    /// Appends one record and flushes it to the file.
    pub(crate) fn append<E: Serialize>(&mut self, record: &E) -> std::io::Result<()> {
        let mut line = serde_json::to_vec(record)?;
        line.push(b'\n');
        self.file.write_all(&line)?;
        self.file.sync_data()?;
        self.appended += 1;
        Ok(())
    }

    /// Replaces the file with `records`, atomically (written aside, then renamed).
    pub(crate) fn rewrite<E: Serialize>(&mut self, records: &[E]) -> std::io::Result<()> {
        let aside = self.path.with_extension("rewrite");
        let mut file = File::create(&aside)?;
        for record in records {
            let mut line = serde_json::to_vec(record)?;
            line.push(b'\n');
            file.write_all(&line)?;
        }
        file.sync_all()?;
        std::fs::rename(&aside, &self.path)?;
        self.file = OpenOptions::new().append(true).open(&self.path)?;
        self.appended = 0;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_survive_reopening_a_torn_tail_is_dropped_and_rewrites_compact() {
        let dir = std::env::temp_dir().join(format!("gridplay-journal-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("journal.jsonl");
        let _ = std::fs::remove_file(&path);
        let (mut journal, none) = Journal::open::<u32>(&path).unwrap();
        assert!(none.is_empty());
        for n in [1u32, 2, 3] {
            journal.append(&n).unwrap();
        }
        drop(journal);
        let (_, read) = Journal::open::<u32>(&path).unwrap();
        assert_eq!(read, [1, 2, 3]);
        // A crash mid-line leaves a torn last record: dropped, and later records still read.
        OpenOptions::new().append(true).open(&path).unwrap().write_all(b"[4").unwrap();
        let (mut journal, read) = Journal::open::<u32>(&path).unwrap();
        assert_eq!(read, [1, 2, 3]);
        journal.append(&5u32).unwrap();
        let (mut journal, read) = Journal::open::<u32>(&path).unwrap();
        assert_eq!(read, [1, 2, 3, 5]);
        journal.rewrite(&[7u32]).unwrap();
        journal.append(&8u32).unwrap();
        let (_, read) = Journal::open::<u32>(&path).unwrap();
        assert_eq!(read, [7, 8]);
        // A bad line that is not the last is an error, not a silent loss.
        std::fs::write(&path, "1\nx\n2\n").unwrap();
        assert!(Journal::open::<u32>(&path).is_err());
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
