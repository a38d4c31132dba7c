//! The single-queue data path's cost per frame, through the transport and the device's
//! event handler, on the stand-in tap (a socket pair): 64 frames of 1514 bytes each way
//! per round, the loop run without waiting (run_ready). Ignored (a measurement, not a check):
//! `cargo test -p devices --release --lib net::tests::bench -- --ignored --nocapture`.

use super::*;
use std::time::Instant;

const ROUNDS: usize = 3000;
const BATCH: usize = 64;

#[test]
#[ignore]
fn single_queue_frames_each_way() {
    let (net, peer) = device(false);
    let (mut d, _) = TestDriver::new(net);
    d.activate(F_MRG_RXBUF, 256);
    let p = packet(&frame(1514, 7));
    let tx_bufs: Vec<u64> = (0..BATCH).map(|_| d.alloc_with(&p)).collect();
    let rx_bufs: Vec<u64> = (0..BATCH).map(|_| d.alloc(2048, 0)).collect();
    let mut sink = vec![0u8; 70000];
    let (mut tx_ns, mut rx_ns) = (0u128, 0u128);
    for _ in 0..ROUNDS {
        let start = Instant::now();
        for &buf in &tx_bufs {
            d.add_chain(TX, &[(buf, p.len() as u32, false)]);
        }
        d.kick(TX as u32);
        d.run_ready();
        tx_ns += start.elapsed().as_nanos();
        for _ in 0..BATCH {
            // SAFETY: recv writes at most `sink.len()` bytes into our buffer.
            let n = unsafe { libc::recv(peer.0.as_raw_fd(), sink.as_mut_ptr().cast(), sink.len(), 0) };
            assert_eq!(n, p.len() as isize);
        }
        for _ in 0..BATCH {
            peer.send(&p);
        }
        let start = Instant::now();
        for &buf in &rx_bufs {
            d.add_chain(RX, &[(buf, 2048, true)]);
        }
        d.kick(RX as u32);
        d.run_ready();
        rx_ns += start.elapsed().as_nanos();
    }
    let frames = (ROUNDS * BATCH) as u128;
    assert_eq!(usize::from(d.used_idx(RX)), (ROUNDS * BATCH) % 65536);
    println!("BENCH net single-queue: tx {} ns/frame, rx {} ns/frame", tx_ns / frames, rx_ns / frames);
}
