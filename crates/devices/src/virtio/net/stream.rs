//! QEMU's stream framing (`-netdev stream`, `-net socket`, what passt
//! speaks): each Ethernet frame is a 4-byte big-endian length and the
//! frame, with no virtio-net header. A connected stream socket delivers
//! such records in pieces of any size, and accepts writes only partly when
//! its buffer is full: `FrameReader` reassembles the records, `FrameWriter`
//! keeps the unwritten rest of the last one until the socket takes it.

use std::io::{self, Read, Write};

/// Bytes of the length in front of each frame.
pub const LEN_PREFIX: usize = 4;

/// Reassembles frames from the byte stream; `max_frame` bounds a frame, so
/// a peer that is out of step (or hostile) cannot make us buffer gigabytes.
pub struct FrameReader {
    buf: Vec<u8>,
    /// Unconsumed bytes are `buf[start..end]`.
    start: usize,
    end: usize,
    max_frame: usize,
}

/// What `FrameReader::read_frame` found.
#[derive(Debug, thiserror::Error)]
pub enum StreamError {
    #[error("the peer announced a {0}-byte frame, more than the {1} bytes a frame may have")]
    Oversized(usize, usize),
    #[error("the peer closed the connection")]
    Closed,
    #[error("{0}")]
    Io(#[source] io::Error),
}

impl FrameReader {
    pub fn new(max_frame: usize) -> FrameReader {
        // Room for one whole record and the start of the next: a read never
        // has to wait for the buffer to drain.
        FrameReader { buf: vec![0; 2 * (LEN_PREFIX + max_frame)], start: 0, end: 0, max_frame }
    }

    /// The length of the next complete frame in the buffer, if there is one.
    fn complete(&self) -> Result<Option<usize>, StreamError> {
        let have = self.end - self.start;
        if have < LEN_PREFIX {
            return Ok(None);
        }
        let mut len = [0u8; LEN_PREFIX];
        len.copy_from_slice(&self.buf[self.start..self.start + LEN_PREFIX]);
        let len = u32::from_be_bytes(len) as usize;
        if len > self.max_frame {
            return Err(StreamError::Oversized(len, self.max_frame));
        }
        Ok((have >= LEN_PREFIX + len).then_some(len))
    }

    /// True when a whole frame is buffered: the socket may be empty (so its fd
    /// is not readable) while frames wait here, and the reader must take them
    /// without waiting for the next readable event.
    pub fn has_frame(&self) -> bool {
        matches!(self.complete(), Ok(Some(_)))
    }

    /// Copies the next frame into `out` (at least `max_frame` bytes) and
    /// returns its length, reading `src` only when no complete frame is
    /// buffered. `Io(WouldBlock)` when the socket has no more bytes for now.
    pub fn read_frame(&mut self, src: &mut impl Read, out: &mut [u8]) -> Result<usize, StreamError> {
        loop {
            if let Some(len) = self.complete()? {
                let from = self.start + LEN_PREFIX;
                out[..len].copy_from_slice(&self.buf[from..from + len]);
                self.start = from + len;
                if self.start == self.end {
                    (self.start, self.end) = (0, 0);
                }
                return Ok(len);
            }
            if self.end == self.buf.len() {
                // The partial record sits at the tail: move it to the front.
                self.buf.copy_within(self.start..self.end, 0);
                (self.start, self.end) = (0, self.end - self.start);
            }
            match src.read(&mut self.buf[self.end..]) {
                Ok(0) => return Err(StreamError::Closed),
                Ok(n) => self.end += n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(StreamError::Io(e)),
            }
        }
    }
}

/// Writes records, keeping what the socket did not take.
#[derive(Default)]
pub struct FrameWriter {
    pending: Vec<u8>,
    /// Bytes of `pending` already written.
    done: usize,
}

impl FrameWriter {
    /// True while part of a record waits for the socket: no new frame may
    /// be queued until `flush` has written it.
    pub fn is_blocked(&self) -> bool {
        self.done < self.pending.len()
    }

    /// Frames `frame` and writes as much as `dst` takes; the rest waits for
    /// `flush`. Only called when not blocked.
    pub fn write_frame(&mut self, dst: &mut impl Write, frame: &[u8]) -> io::Result<()> {
        debug_assert!(!self.is_blocked());
        self.pending.clear();
        self.done = 0;
        self.pending.extend_from_slice(&(frame.len() as u32).to_be_bytes());
        self.pending.extend_from_slice(frame);
        self.flush(dst)
    }

    /// Writes the rest of the pending record; `Ok` with `is_blocked` still
    /// true when the socket is full again. On an error the record is
    /// dropped: the stream is broken, and later frames must not wait for it.
    pub fn flush(&mut self, dst: &mut impl Write) -> io::Result<()> {
        while self.is_blocked() {
            let err = match dst.write(&self.pending[self.done..]) {
                Ok(0) => io::ErrorKind::WriteZero.into(),
                Ok(n) => {
                    self.done += n;
                    continue;
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(()),
                Err(e) => e,
            };
            self.pending.clear();
            self.done = 0;
            return Err(err);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::VecDeque;

    /// A socket stand-in that hands out its bytes in pieces of given sizes,
    /// then WouldBlock or EOF.
    struct Chunks {
        pieces: VecDeque<Vec<u8>>,
        eof: bool,
    }

    impl Read for Chunks {
        fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
            let Some(mut piece) = self.pieces.pop_front() else {
                return if self.eof { Ok(0) } else { Err(io::ErrorKind::WouldBlock.into()) };
            };
            let n = piece.len().min(buf.len());
            buf[..n].copy_from_slice(&piece[..n]);
            if n < piece.len() {
                self.pieces.push_front(piece.split_off(n));
            }
            Ok(n)
        }
    }

    fn record(frame: &[u8]) -> Vec<u8> {
        let mut r = (frame.len() as u32).to_be_bytes().to_vec();
        r.extend_from_slice(frame);
        r
    }

    fn chunked(bytes: &[u8], size: usize, eof: bool) -> Chunks {
        Chunks { pieces: bytes.chunks(size).map(<[u8]>::to_vec).collect(), eof }
    }

    #[test]
    fn frames_split_at_every_byte_are_reassembled() {
        let frames: Vec<Vec<u8>> = (0..5).map(|i| vec![i as u8; 60 + i * 300]).collect();
        let stream: Vec<u8> = frames.iter().flat_map(|f| record(f)).collect();
        for size in [1, 3, 4, 5, 61, 1000, stream.len()] {
            let mut src = chunked(&stream, size, false);
            let mut reader = FrameReader::new(2000);
            let mut out = vec![0; 2000];
            for (i, f) in frames.iter().enumerate() {
                let n = reader.read_frame(&mut src, &mut out).unwrap();
                assert_eq!(&out[..n], &f[..], "pieces of {size}");
                // One read of the whole stream buffers every later frame.
                if size == stream.len() {
                    assert_eq!(reader.has_frame(), i + 1 < frames.len());
                }
            }
            let e = reader.read_frame(&mut src, &mut out).unwrap_err();
            assert!(matches!(e, StreamError::Io(ref e) if e.kind() == io::ErrorKind::WouldBlock), "{e}");
        }
    }

    #[test]
    fn a_record_straddling_the_buffer_end_is_moved_to_the_front() {
        // Three frames of the maximum size fill the buffer past its end.
        let frames: Vec<Vec<u8>> = (0..3).map(|i| vec![i as u8 + 1; 100]).collect();
        let stream: Vec<u8> = frames.iter().flat_map(|f| record(f)).collect();
        let mut src = chunked(&stream, 150, false);
        let mut reader = FrameReader::new(100);
        let mut out = vec![0; 100];
        for f in &frames {
            let n = reader.read_frame(&mut src, &mut out).unwrap();
            assert_eq!(&out[..n], &f[..]);
        }
    }

    #[test]
    fn an_oversized_frame_is_refused_without_buffering_it() {
        let mut src = chunked(&record(&[7; 101]), 4, false);
        let mut reader = FrameReader::new(100);
        let mut out = vec![0; 100];
        let e = reader.read_frame(&mut src, &mut out).unwrap_err();
        assert!(matches!(e, StreamError::Oversized(101, 100)), "{e}");
        assert!(e.to_string().contains("101-byte frame"));
        // A frame of exactly the limit is fine.
        let mut src = chunked(&record(&[7; 100]), 7, false);
        let mut reader = FrameReader::new(100);
        assert_eq!(reader.read_frame(&mut src, &mut out).unwrap(), 100);
    }

    #[test]
    fn eof_is_reported_after_the_last_whole_frame_and_mid_frame() {
        let mut stream = record(&[1; 20]);
        stream.extend_from_slice(&record(&[2; 20])[..10]);
        let mut src = chunked(&stream, 7, true);
        let mut reader = FrameReader::new(100);
        let mut out = vec![0; 100];
        assert_eq!(reader.read_frame(&mut src, &mut out).unwrap(), 20);
        assert!(matches!(reader.read_frame(&mut src, &mut out), Err(StreamError::Closed)));
    }

    /// A socket stand-in that takes at most `room` bytes, then WouldBlock.
    struct Sink {
        got: Vec<u8>,
        room: usize,
    }

    impl Write for Sink {
        fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
            if self.room == 0 {
                return Err(io::ErrorKind::WouldBlock.into());
            }
            let n = buf.len().min(self.room).min(3);
            self.got.extend_from_slice(&buf[..n]);
            self.room -= n;
            Ok(n)
        }
        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn a_partial_write_blocks_until_flushed_and_nothing_is_lost() {
        let mut sink = Sink { got: Vec::new(), room: 10 };
        let mut writer = FrameWriter::default();
        writer.write_frame(&mut sink, &[9; 30]).unwrap();
        assert!(writer.is_blocked());
        assert_eq!(sink.got.len(), 10);
        writer.flush(&mut sink).unwrap();
        assert!(writer.is_blocked(), "still full");
        sink.room = 100;
        writer.flush(&mut sink).unwrap();
        assert!(!writer.is_blocked());
        writer.write_frame(&mut sink, &[5; 2]).unwrap();
        let mut expected = record(&[9; 30]);
        expected.extend_from_slice(&record(&[5; 2]));
        assert_eq!(sink.got, expected);
    }

    #[test]
    fn a_write_error_is_returned_and_the_frame_dropped() {
        struct Broken;
        impl Write for Broken {
            fn write(&mut self, _: &[u8]) -> io::Result<usize> {
                Err(io::ErrorKind::BrokenPipe.into())
            }
            fn flush(&mut self) -> io::Result<()> {
                Ok(())
            }
        }
        let mut writer = FrameWriter::default();
        let e = writer.write_frame(&mut Broken, &[1; 20]).unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::BrokenPipe);
        assert!(!writer.is_blocked(), "a broken stream must not hold the next frames back");
    }
}
