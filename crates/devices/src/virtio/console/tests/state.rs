//! The one-port console saved and restored: bytes keep flowing both ways, with input
//! read before the snapshot and a half-sent chain carried over.

use super::*;
use crate::state::DeviceState;
use crate::virtio::VirtioState;

fn peer_chardev() -> (Chardev, UnixStream) {
    let (ours, peer) = UnixStream::pair().unwrap();
    let input = ours.try_clone().unwrap();
    peer.set_nonblocking(true).unwrap();
    (Chardev::from_fds("test", Some(input.into()), Some(ours.into())).unwrap(), peer)
}

fn saved_console(state: &DeviceState) -> &ConsoleState {
    match state {
        DeviceState::Virtio(t) => match &t.device {
            VirtioState::Console(c) => c,
            other => panic!("not a console: {other:?}"),
        },
        other => panic!("not virtio: {other:?}"),
    }
}

#[test]
fn bytes_keep_flowing_after_a_restore() {
    let (mut d, _, mut peer) = with_peer();
    let first = send(&mut d, b"before ");
    assert_eq!(d.used(TX), [(first, 0)]);
    assert_eq!(drain(&mut peer), b"before ");
    // Typed while the guest has no receive buffer: the device holds it.
    peer.write_all(b"typed").unwrap();
    d.run_events();
    let state = d.save();
    assert_eq!(saved_console(&state), &ConsoleState { pending: b"typed".to_vec(), tx: None, output: Vec::new() });

    let (chardev, mut peer2) = peer_chardev();
    let (mut r, _) = d.restored(Console::new(chardev).unwrap(), state).unwrap();
    let mut rx = RxBuffers::default();
    rx.post(&mut r, 2, 64);
    r.notify(RX as u32);
    rx.collect(&mut r);
    assert_eq!(rx.received, b"typed");
    let head = send(&mut r, b"after");
    assert_eq!(r.used(TX), [(head, 0)]);
    assert_eq!(drain(&mut peer2), b"after");
    peer2.write_all(b" more").unwrap();
    assert!(wait_for(&mut r, |r| {
        rx.collect(r);
        rx.received.len() == 10
    }));
    assert_eq!(rx.received, b"typed more");
}

/// A chain the old chardev had taken part of: the restored device sends what the old
/// peer never got (the old chardev's buffer, then the rest of the chain) and then gives
/// the buffer back (Linux's hvc waits for it).
#[test]
fn a_half_sent_chain_is_finished_after_a_restore() {
    let (mut d, _, mut peer) = with_peer();
    let data = pattern(1 << 20);
    let a = d.alloc_with(&data);
    let head = d.add_chain(TX, &[(a, data.len() as u32, false)]);
    d.notify(TX as u32);
    assert!(d.used(TX).is_empty(), "a peer that does not read holds the chain");
    let state = d.save();
    let tx = saved_console(&state).tx.clone().expect("a chain in progress");
    assert_eq!((tx.head, tx.index, tx.segments.clone()), (head, 0, vec![(a, data.len() as u32)]));
    let sent = tx.offset as usize;
    assert!(sent > 0 && sent < data.len(), "{sent}");
    assert_eq!(saved_console(&state).output.len(), crate::chardev::OUTPUT_BUFFER, "the old chardev's buffer");
    // What reached the old peer's socket is delivered there; the rest comes after the restore.
    let delivered = drain(&mut peer).len();
    assert_eq!(delivered + crate::chardev::OUTPUT_BUFFER, sent);

    let (chardev, mut peer2) = peer_chardev();
    let (mut r, _) = d.restored(Console::new(chardev).unwrap(), state).unwrap();
    let mut got = Vec::new();
    let mut used = Vec::new();
    assert!(wait_for(&mut r, |r| {
        got.extend(drain(&mut peer2));
        used.extend(r.used(TX));
        got.len() == data.len() - delivered && !used.is_empty()
    }));
    assert!(got == data[delivered..], "everything the old peer did not get, in order");
    assert_eq!(used, [(u32::from(head), 0)]);
}

#[test]
fn a_bad_saved_chain_is_refused() {
    let (mut d, _, _peer) = with_peer();
    let mut state = d.save();
    let DeviceState::Virtio(t) = &mut state else { panic!("virtio") };
    t.device = VirtioState::Console(ConsoleState {
        pending: Vec::new(),
        tx: Some(TxChainState { head: 0, segments: Vec::new(), index: 1, offset: 0 }),
        output: Vec::new(),
    });
    let (chardev, _peer2) = peer_chardev();
    let err = d.restored(Console::new(chardev).unwrap(), state).err().unwrap();
    assert_eq!(err.to_string(), "virtio-console: saved transmit chain is invalid");
}
