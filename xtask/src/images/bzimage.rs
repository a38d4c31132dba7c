//! Getting the ELF `vmlinux` out of a bzImage.
//!
//! Rather than scanning for compression magic like the kernel's scripts/extract-vmlinux,
//! read where the boot protocol (>= 2.08, Documentation/arch/x86/boot.rst) says the
//! payload is: `payload_offset`/`payload_length` in the setup header, relative to the
//! protected-mode code that starts after `(setup_sects + 1) * 512` bytes.

use crate::host::Result;
use std::io::Write;
use std::process::{Command, Stdio};

/// The compressed payload and the command that decompresses it.
pub fn payload(image: &[u8]) -> Result<(&[u8], &'static [&'static str])> {
    if image.len() < 0x250 || &image[0x202..0x206] != b"HdrS" {
        return Err("not a bzImage (no HdrS setup header)".into());
    }
    let version = u16::from_le_bytes([image[0x206], image[0x207]]);
    if version < 0x208 {
        return Err(format!("boot protocol {version:#x} has no payload fields (needs 2.08)"));
    }
    let setup_sects = match image[0x1f1] {
        0 => 4, // "if 0, the real value is 4"
        n => n as usize,
    };
    let word = |o: usize| u32::from_le_bytes(image[o..o + 4].try_into().unwrap()) as usize;
    let start = (setup_sects + 1) * 512 + word(0x248);
    let end = start + word(0x24c);
    if end > image.len() {
        return Err("payload runs past the end of the file".into());
    }
    let p = &image[start..end];
    // Every format but gzip gets the uncompressed size appended by the kernel build
    // (arch/x86/boot/compressed/Makefile, *_with_size); the tools reject that tail.
    let (cmd, sized): (&'static [&'static str], bool) = if p.starts_with(&[0x1f, 0x8b]) {
        (&["gzip", "-dc"], false)
    } else if p.starts_with(&[0xfd, b'7', b'z', b'X', b'Z', 0]) {
        (&["xz", "-dc"], true)
    } else if p.starts_with(&[0x28, 0xb5, 0x2f, 0xfd]) {
        (&["zstd", "-dc"], true)
    } else if p.starts_with(&[0x02, 0x21, 0x4c, 0x18]) {
        (&["lz4", "-dc"], true)
    } else if p.starts_with(b"BZh") {
        (&["bzip2", "-dc"], true)
    } else if p.starts_with(&[0x5d, 0, 0]) {
        (&["xz", "--format=lzma", "-dc"], true)
    } else if p.starts_with(&[0x89, b'L', b'Z', b'O']) {
        (&["lzop", "-dc"], true)
    } else {
        return Err(format!("unknown payload compression (magic {:02x?})", &p[..p.len().min(6)]));
    };
    Ok((if sized { &p[..p.len().saturating_sub(4)] } else { p }, cmd))
}

/// Decompresses the payload (with the format's standard tool) and returns the vmlinux.
pub fn extract_vmlinux(image: &[u8]) -> Result<Vec<u8>> {
    let (data, cmd) = payload(image)?;
    let mut child = Command::new(cmd[0])
        .args(&cmd[1..])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| format!("cannot start {}: {e}", cmd[0]))?;
    let mut stdin = child.stdin.take().unwrap();
    // Feed from a thread: the tool's stdout pipe fills long before its input is consumed.
    let data = data.to_vec();
    let feeder = std::thread::spawn(move || stdin.write_all(&data));
    let out = child.wait_with_output().map_err(|e| e.to_string())?;
    let _ = feeder.join();
    if !out.status.success() {
        return Err(format!("{} failed: {}", cmd.join(" "), String::from_utf8_lossy(&out.stderr).trim()));
    }
    if !out.stdout.starts_with(b"\x7fELF") {
        return Err("decompressed payload is not an ELF file".into());
    }
    Ok(out.stdout)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rejects_non_bzimage() {
        assert!(payload(&[0u8; 4096]).is_err());
    }

    /// A synthetic bzImage around a gzip payload of a fake ELF.
    #[test]
    fn extracts_gzip_payload() {
        let elf = b"\x7fELF fake kernel".repeat(100);
        let mut gz = Command::new("gzip").arg("-c").stdin(Stdio::piped()).stdout(Stdio::piped()).spawn().unwrap();
        gz.stdin.take().unwrap().write_all(&elf).unwrap();
        let compressed = gz.wait_with_output().unwrap().stdout;
        let mut image = vec![0u8; 3 * 512];
        image[0x1f1] = 2; // setup_sects: protected-mode code at 3 * 512
        image[0x202..0x206].copy_from_slice(b"HdrS");
        image[0x206..0x208].copy_from_slice(&0x20fu16.to_le_bytes());
        image[0x248..0x24c].copy_from_slice(&16u32.to_le_bytes());
        image[0x24c..0x250].copy_from_slice(&(compressed.len() as u32).to_le_bytes());
        image.extend_from_slice(&[0u8; 16]);
        image.extend_from_slice(&compressed);
        assert_eq!(extract_vmlinux(&image).unwrap(), elf);
    }
}
