//! A writer for the "newc" cpio format, the one the Linux initramfs unpacker reads.
//!
//! Written here rather than driving `cpio(1)` so an archive can hold device nodes, root
//! ownership and files from anywhere on the host without staging a directory tree as
//! root (see Documentation/driver-api/early-userspace/buffer-format.rst).

use std::collections::HashSet;
use std::fs::File;
use std::io::{self, Read, Write};
use std::path::Path;

const S_IFDIR: u32 = 0o040000;
const S_IFREG: u32 = 0o100000;
const S_IFLNK: u32 = 0o120000;
const S_IFCHR: u32 = 0o020000;

pub struct Cpio<W: Write> {
    out: W,
    offset: u64,
    next_ino: u32,
    dirs: HashSet<String>,
}

impl<W: Write> Cpio<W> {
    pub fn new(out: W) -> Self {
        Cpio { out, offset: 0, next_ino: 1, dirs: HashSet::new() }
    }

    /// A directory (parents are added as needed by every method).
    pub fn dir(&mut self, path: &str) -> io::Result<()> {
        let path = path.trim_matches('/');
        if path.is_empty() || self.dirs.contains(path) {
            return Ok(());
        }
        self.parents(path)?;
        self.dirs.insert(path.to_string());
        self.entry(path, S_IFDIR | 0o755, 0, (0, 0), &mut io::empty())
    }

    pub fn file(&mut self, path: &str, mode: u32, data: &[u8]) -> io::Result<()> {
        self.parents(path)?;
        self.entry(path, S_IFREG | mode, data.len() as u64, (0, 0), &mut &data[..])
    }

    /// A regular file copied from the host, streamed (rig archives hold ~100 MB).
    pub fn file_from(&mut self, path: &str, mode: u32, src: &Path) -> io::Result<()> {
        let mut f = File::open(src).map_err(|e| io::Error::new(e.kind(), format!("{}: {e}", src.display())))?;
        let len = f.metadata()?.len();
        self.parents(path)?;
        self.entry(path, S_IFREG | mode, len, (0, 0), &mut f)
    }

    pub fn symlink(&mut self, path: &str, target: &str) -> io::Result<()> {
        self.parents(path)?;
        self.entry(path, S_IFLNK | 0o777, target.len() as u64, (0, 0), &mut target.as_bytes())
    }

    pub fn char_dev(&mut self, path: &str, mode: u32, major: u32, minor: u32) -> io::Result<()> {
        self.parents(path)?;
        self.entry(path, S_IFCHR | mode, 0, (major, minor), &mut io::empty())
    }

    /// Writes the trailer and returns the inner writer.
    pub fn finish(mut self) -> io::Result<W> {
        self.entry("TRAILER!!!", 0, 0, (0, 0), &mut io::empty())?;
        Ok(self.out)
    }

    fn parents(&mut self, path: &str) -> io::Result<()> {
        match path.trim_matches('/').rsplit_once('/') {
            Some((parent, _)) => self.dir(parent),
            None => Ok(()),
        }
    }

    fn entry(&mut self, path: &str, mode: u32, size: u64, rdev: (u32, u32), data: &mut dyn io::Read) -> io::Result<()> {
        let name = path.trim_start_matches('/');
        if size > u32::MAX as u64 {
            return Err(io::Error::other(format!("{name}: too large for newc cpio")));
        }
        let ino = self.next_ino;
        self.next_ino += 1;
        let nlink = if mode & S_IFDIR == S_IFDIR { 2 } else { 1 };
        // ino mode uid gid nlink mtime filesize devmajor devminor rdevmajor rdevminor namesize check
        let fields = [ino, mode, 0, 0, nlink, 0, size as u32, 0, 0, rdev.0, rdev.1, name.len() as u32 + 1, 0];
        let mut header = String::from("070701");
        for f in fields {
            header.push_str(&format!("{f:08x}"));
        }
        self.put(header.as_bytes())?;
        self.put(name.as_bytes())?;
        self.put(&[0])?;
        self.pad()?;
        let copied = io::copy(&mut Read::take(data, size), &mut self.out)?;
        if copied != size {
            return Err(io::Error::other(format!("{name}: file changed while archiving")));
        }
        self.offset += size;
        self.pad()
    }

    fn put(&mut self, bytes: &[u8]) -> io::Result<()> {
        self.out.write_all(bytes)?;
        self.offset += bytes.len() as u64;
        Ok(())
    }

    /// Header+name and data are each padded to a multiple of 4 bytes.
    fn pad(&mut self) -> io::Result<()> {
        let n = ((4 - self.offset % 4) % 4) as usize;
        self.put(&[0u8; 3][..n])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn layout_matches_newc() {
        let mut c = Cpio::new(Vec::new());
        c.file("a/b", 0o644, b"hello").unwrap();
        let out = c.finish().unwrap();
        let text = String::from_utf8_lossy(&out);
        // parent dir first, then the file, then the trailer
        let names: Vec<_> = ["a\0", "a/b\0", "TRAILER!!!\0"].iter().map(|n| text.find(n).unwrap()).collect();
        assert!(names.windows(2).all(|w| w[0] < w[1]));
        assert!(text.contains("hello"));
        assert_eq!(out.len() % 4, 0);
        assert_eq!(&out[..6], b"070701");
        // second header starts 4-aligned
        let second = text[1..].find("070701").unwrap() + 1;
        assert_eq!(second % 4, 0);
    }

    #[test]
    fn cpio_tool_can_list_it() {
        if Command::new("cpio").arg("--version").output().is_err() {
            return; // cpio(1) is a convenience package; the layout test above still runs
        }
        let mut c = Cpio::new(Vec::new());
        c.symlink("bin/sh", "busybox").unwrap();
        c.char_dev("dev/console", 0o600, 5, 1).unwrap();
        c.file("init", 0o755, b"#!/bin/sh\n").unwrap();
        let data = c.finish().unwrap();
        let mut child = Command::new("cpio")
            .args(["-t", "--quiet"])
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        child.stdin.take().unwrap().write_all(&data).unwrap();
        let out = child.wait_with_output().unwrap();
        assert!(out.status.success());
        assert_eq!(String::from_utf8_lossy(&out.stdout), "bin\nbin/sh\ndev\ndev/console\ninit\n");
    }

    use std::process::Command;
}
