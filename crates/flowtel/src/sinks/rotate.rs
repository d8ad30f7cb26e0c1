//! A file that rotates by size: `flows.json` is renamed `flows.json.1` (and `.1` to `.2`, ...,
//! keeping `keep` old files) when writing the next chunk would take it past `max_bytes`, and a
//! new `flows.json` is started. Chunks are never split, so every line stays whole in one file.
//! A `max_bytes` of 0 never rotates.

use std::fs::{File, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};

#[derive(Debug)]
pub struct RotatingFile {
    path: PathBuf,
    max_bytes: u64,
    keep: usize,
    file: File,
    written: u64,
}

impl RotatingFile {
    /// Open (append to) `path`.
    pub fn open(path: &Path, max_bytes: u64, keep: usize) -> io::Result<Self> {
        let file = OpenOptions::new().create(true).append(true).open(path)?;
        let written = file.metadata()?.len();
        Ok(RotatingFile {
            path: path.to_owned(),
            max_bytes,
            keep,
            file,
            written,
        })
    }

    fn rotated(&self, n: usize) -> PathBuf {
        let mut p = self.path.clone().into_os_string();
        p.push(format!(".{n}"));
        PathBuf::from(p)
    }

    fn rotate(&mut self) -> io::Result<()> {
        self.file.flush()?;
        if self.keep == 0 {
            std::fs::remove_file(&self.path)?;
        } else {
            for n in (1..self.keep).rev() {
                let from = self.rotated(n);
                if from.exists() {
                    std::fs::rename(&from, self.rotated(n + 1))?;
                }
            }
            std::fs::rename(&self.path, self.rotated(1))?;
        }
        self.file = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.path)?;
        self.written = 0;
        Ok(())
    }

    /// Append one chunk (whole lines), rotating first when it would not fit.
    pub fn write_chunk(&mut self, chunk: &[u8]) -> io::Result<()> {
        let len = chunk.len() as u64;
        if self.max_bytes > 0 && self.written > 0 && self.written + len > self.max_bytes {
            self.rotate()?;
        }
        self.file.write_all(chunk)?;
        self.written += len;
        Ok(())
    }

    pub fn flush(&mut self) -> io::Result<()> {
        self.file.flush()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rotates_by_size_keeping_whole_chunks_and_n_old_files() {
        let dir = std::env::temp_dir().join(format!("flowtel-rotate-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("flows.json");
        let mut f = RotatingFile::open(&path, 10, 2).unwrap();
        for line in [
            "aaaa\n",
            "bbbb\n",
            "cccc\n",
            "dddd\n",
            "eeee\n",
            "ffffffffffff\n",
            "g\n",
        ] {
            f.write_chunk(line.as_bytes()).unwrap();
        }
        f.flush().unwrap();
        let read = |p: &Path| std::fs::read_to_string(p).unwrap();
        assert_eq!(read(&path), "g\n");
        assert_eq!(
            read(&dir.join("flows.json.1")),
            "ffffffffffff\n",
            "a chunk is never split"
        );
        assert_eq!(read(&dir.join("flows.json.2")), "eeee\n");
        assert!(
            !dir.join("flows.json.3").exists(),
            "only two old files kept"
        );
        // Reopening appends to the current file and counts what it holds.
        let mut f = RotatingFile::open(&path, 10, 2).unwrap();
        f.write_chunk(b"hhhhhhhhh\n").unwrap();
        assert_eq!(read(&path), "hhhhhhhhh\n");
        assert_eq!(read(&dir.join("flows.json.1")), "g\n");
        let _ = std::fs::remove_dir_all(&dir);
    }
}
