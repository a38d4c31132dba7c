//! QEMU's `file:` migration URI, the one microvm takes (QMP `migrate`, `-incoming`).

use std::path::PathBuf;

#[derive(Debug, PartialEq, Eq, thiserror::Error)]
pub enum UriError {
    #[error("microvm migrates only to files: use 'file:PATH' (a snapshot), not '{0}:' (there is no live migration)")]
    Scheme(String),
    #[error("invalid offset '{0}' (bytes, decimal or 0x hex)")]
    Offset(String),
    #[error("the file: URI names no file")]
    NoPath,
}

/// Parses QEMU's `file:PATH[,offset=N]`.
pub fn parse_file_uri(uri: &str) -> Result<(PathBuf, u64), UriError> {
    let Some(rest) = uri.strip_prefix("file:") else {
        return Err(UriError::Scheme(uri.split(':').next().unwrap_or(uri).to_owned()));
    };
    let (path, offset) = match rest.rsplit_once(",offset=") {
        Some((path, offset)) => (path, parse_offset(offset).ok_or_else(|| UriError::Offset(offset.to_owned()))?),
        None => (rest, 0),
    };
    if path.is_empty() {
        return Err(UriError::NoPath);
    }
    Ok((PathBuf::from(path), offset))
}

fn parse_offset(text: &str) -> Option<u64> {
    match text.strip_prefix("0x").or_else(|| text.strip_prefix("0X")) {
        Some(hex) => u64::from_str_radix(hex, 16).ok(),
        None => text.parse().ok(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn file_uris_as_qemu_spells_them() {
        assert_eq!(parse_file_uri("file:/tmp/vm.snap").unwrap(), (PathBuf::from("/tmp/vm.snap"), 0));
        assert_eq!(parse_file_uri("file:/tmp/a,b,offset=0x1000").unwrap(), (PathBuf::from("/tmp/a,b"), 4096));
        assert_eq!(parse_file_uri("file:rel,offset=512").unwrap(), (PathBuf::from("rel"), 512));
        assert_eq!(parse_file_uri("file:/x,offset=zz").unwrap_err(), UriError::Offset("zz".into()));
        assert_eq!(parse_file_uri("file:").unwrap_err(), UriError::NoPath);
        let e = parse_file_uri("tcp:localhost:4444").unwrap_err();
        assert!(e.to_string().contains("not 'tcp:'"), "{e}");
        assert_eq!(parse_file_uri("exec:cat > /tmp/x").unwrap_err(), UriError::Scheme("exec".into()));
    }
}
