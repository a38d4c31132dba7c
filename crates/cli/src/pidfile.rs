//! `-pidfile PATH`: the file is created and locked before set-up (so a second microvm
//! naming the same file fails before it touches anything the first one owns), the pid
//! is written once the VM is ready, and the file is removed at exit. The lock, not the
//! file's existence, says whether a microvm is alive: a stale file left by a killed
//! process is simply taken over, as QEMU does.

use std::fs::File;
use std::io::{self, Read, Seek, Write};
use std::os::fd::AsRawFd;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

#[derive(Debug, thiserror::Error)]
pub enum PidfileError {
    #[error("-pidfile: cannot create {}: {source}", .path.display())]
    Create { path: PathBuf, source: io::Error },
    #[error("-pidfile: {} is locked by a running microvm{}", .path.display(), .pid.map(|p| format!(" (pid {p})")).unwrap_or_default())]
    Locked { path: PathBuf, pid: Option<u32> },
    #[error("-pidfile: cannot write {}: {source}", .path.display())]
    Write { path: PathBuf, source: io::Error },
}

pub struct Pidfile {
    path: PathBuf,
    file: File,
}

impl Pidfile {
    /// Creates and locks the file.
    pub fn lock(path: &Path) -> Result<Pidfile, PidfileError> {
        let create = |source| PidfileError::Create { path: path.to_owned(), source };
        let mut file = File::options()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .mode(0o644)
            .open(path)
            .map_err(create)?;
        // A whole-file write lock that conflicts with QEMU's lockf(F_TLOCK) and with any
        // tool that tests the file with lockf/fcntl; an open-file-description lock, so a
        // second open in the same process conflicts too.
        let lock = libc::flock {
            l_type: libc::F_WRLCK as libc::c_short,
            l_whence: libc::SEEK_SET as libc::c_short,
            l_start: 0,
            l_len: 0,
            l_pid: 0,
        };
        // SAFETY: fcntl on a descriptor we own, with a valid flock struct.
        if unsafe { libc::fcntl(file.as_raw_fd(), libc::F_OFD_SETLK, &lock) } < 0 {
            let e = io::Error::last_os_error();
            if matches!(e.raw_os_error(), Some(libc::EAGAIN | libc::EACCES)) {
                let mut text = String::new();
                let _ = file.read_to_string(&mut text);
                return Err(PidfileError::Locked { path: path.to_owned(), pid: text.trim().parse().ok() });
            }
            return Err(create(e));
        }
        // Relative paths keep naming the same file at exit: the daemon does not chdir.
        Ok(Pidfile { path: path.to_owned(), file })
    }

    /// Writes this process's pid (the daemon's, after `-daemonize`).
    pub fn write_pid(&mut self) -> Result<(), PidfileError> {
        let write = |source| PidfileError::Write { path: self.path.clone(), source };
        self.file.set_len(0).map_err(write)?;
        self.file.rewind().map_err(write)?;
        writeln!(self.file, "{}", std::process::id()).map_err(write)?;
        self.file.flush().map_err(write)
    }
}

impl Drop for Pidfile {
    fn drop(&mut self) {
        // Still locked: nobody else can have taken the file over.
        let _ = std::fs::remove_file(&self.path);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn second_lock_fails_naming_the_holder_and_the_file_goes_at_drop() {
        let dir = std::env::temp_dir().join(format!("microvm-pidfile-test-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("vm.pid");
        let mut first = Pidfile::lock(&path).unwrap();
        first.write_pid().unwrap();
        assert_eq!(std::fs::read_to_string(&path).unwrap(), format!("{}\n", std::process::id()));
        // The lock belongs to the open file description: a second open conflicts.
        let err = Pidfile::lock(&path).err().expect("second lock must fail");
        assert_eq!(
            err.to_string(),
            format!("-pidfile: {} is locked by a running microvm (pid {})", path.display(), std::process::id())
        );
        drop(first);
        assert!(!path.exists());
        let missing = Pidfile::lock(&dir.join("no/such/dir/vm.pid")).err().expect("missing directory");
        assert!(missing.to_string().contains("No such file or directory"), "{missing}");
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
