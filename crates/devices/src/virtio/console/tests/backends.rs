//! The one-port console on each kind of chardev backend: file, Unix socket
//! (server and client), pty, and the errors opening one gives.

use super::*;
use std::fs::OpenOptions;
use std::os::unix::fs::OpenOptionsExt;
use std::os::unix::net::UnixListener;
use std::path::Path;

#[test]
fn file_backend_truncates_and_receives_output() {
    let dir = temp_dir();
    let path = dir.as_path().join("console.log");
    std::fs::write(&path, "old contents\n").unwrap();
    let chardev = Chardev::open("f", &ChardevBackend::File { path: path.clone(), append: false }).unwrap();
    assert!(chardev.input_fd().is_none(), "no input");
    let (mut d, _) = console(chardev);
    send(&mut d, b"boot log\n");
    send(&mut d, b"more\n");
    assert_eq!(d.used(TX).len(), 2);
    assert_eq!(std::fs::read_to_string(&path).unwrap(), "boot log\nmore\n");
}

#[test]
fn file_backend_can_append() {
    let dir = temp_dir();
    let path = dir.as_path().join("console.log");
    std::fs::write(&path, "old\n").unwrap();
    let (mut d, _) = console(Chardev::open("f", &ChardevBackend::File { path: path.clone(), append: true }).unwrap());
    send(&mut d, b"new\n");
    assert_eq!(std::fs::read_to_string(&path).unwrap(), "old\nnew\n");
}

// ---- Socket backends ----

fn server(path: &Path, wait: bool) -> Chardev {
    Chardev::open("s0", &ChardevBackend::Socket { path: path.to_path_buf(), server: true, wait }).unwrap()
}

fn connect(path: &Path) -> UnixStream {
    let s = UnixStream::connect(path).unwrap();
    s.set_nonblocking(true).unwrap();
    s
}

#[test]
fn socket_server_carries_both_ways() {
    let dir = temp_dir();
    let path = dir.as_path().join("console.sock");
    let (mut d, dev) = console(server(&path, false));
    let mut client = connect(&path);
    assert!(wait_for(&mut d, |_| dev.lock().unwrap().chardev().is_connected()));

    send(&mut d, b"login: ");
    assert_eq!(read_exactly(&mut client, 7), b"login: ");

    let mut rx = RxBuffers::default();
    rx.post(&mut d, 2, 64);
    d.notify(RX as u32);
    client.write_all(b"root\n").unwrap();
    assert!(wait_for(&mut d, |d| {
        rx.collect(d);
        rx.received.len() == 5
    }));
    assert_eq!(rx.received, b"root\n");
}

#[test]
fn socket_server_drops_output_without_a_client_and_reaccepts() {
    let dir = temp_dir();
    let path = dir.as_path().join("console.sock");
    let (mut d, dev) = console(server(&path, false));
    // No client: dropped, and the guest is not held up.
    let head = send(&mut d, b"nobody");
    assert_eq!(d.used(TX), vec![(head, 0)]);
    assert_eq!(dev.lock().unwrap().chardev().dropped_output(), 6);

    // A first client says something and leaves before the guest has buffers.
    let mut first = connect(&path);
    assert!(wait_for(&mut d, |_| dev.lock().unwrap().chardev().is_connected()));
    first.write_all(b"one ").unwrap();
    drop(first);
    d.run_events();

    // A second client is served once the first one is gone.
    let mut second = connect(&path);
    second.write_all(b"two").unwrap();
    let mut rx = RxBuffers::default();
    rx.post(&mut d, 4, 64);
    d.notify(RX as u32);
    assert!(wait_for(&mut d, |d| {
        rx.collect(d);
        rx.received.len() == 7
    }));
    assert_eq!(rx.received, b"one two", "the first client's words are not lost");
    send(&mut d, b"hi two");
    assert_eq!(read_exactly(&mut second, 6), b"hi two");

    // And again after the second one leaves.
    drop(second);
    assert!(wait_for(&mut d, |_| !dev.lock().unwrap().chardev().is_connected()));
    let mut third = connect(&path);
    assert!(wait_for(&mut d, |_| dev.lock().unwrap().chardev().is_connected()));
    send(&mut d, b"hi three");
    assert_eq!(read_exactly(&mut third, 8), b"hi three");
}

#[test]
fn socket_server_with_wait_blocks_until_a_client_connects() {
    let dir = temp_dir();
    let path = dir.as_path().join("console.sock");
    let client_path = path.clone();
    let client = std::thread::spawn(move || {
        let deadline = Instant::now() + Duration::from_secs(5);
        loop {
            match UnixStream::connect(&client_path) {
                Ok(s) => return s,
                Err(_) if Instant::now() < deadline => std::thread::sleep(Duration::from_millis(10)),
                Err(e) => panic!("cannot connect: {e}"),
            }
        }
    });
    let chardev = server(&path, true);
    assert!(chardev.is_connected(), "open returned with a client");
    let mut client = client.join().unwrap();
    client.set_nonblocking(true).unwrap();
    let (mut d, _) = console(chardev);
    send(&mut d, b"welcome");
    assert_eq!(read_exactly(&mut client, 7), b"welcome");
}

#[test]
fn socket_server_replaces_a_stale_socket() {
    let dir = temp_dir();
    let path = dir.as_path().join("console.sock");
    drop(UnixListener::bind(&path).unwrap());
    assert!(path.exists());
    let chardev = server(&path, false);
    drop(chardev);
    assert!(!path.exists(), "removed when the chardev goes");
}

#[test]
fn socket_client_connects_at_start_and_drops_output_once_the_server_leaves() {
    let dir = temp_dir();
    let path = dir.as_path().join("console.sock");
    let listener = UnixListener::bind(&path).unwrap();
    let chardev =
        Chardev::open("c0", &ChardevBackend::Socket { path: path.clone(), server: false, wait: false }).unwrap();
    let (mut server_end, _) = listener.accept().unwrap();
    server_end.set_nonblocking(true).unwrap();
    let (mut d, dev) = console(chardev);

    send(&mut d, b"to server");
    assert_eq!(read_exactly(&mut server_end, 9), b"to server");
    let mut rx = RxBuffers::default();
    rx.post(&mut d, 1, 64);
    d.notify(RX as u32);
    server_end.write_all(b"to guest").unwrap();
    assert!(wait_for(&mut d, |d| {
        rx.collect(d);
        rx.received.len() == 8
    }));
    assert_eq!(rx.received, b"to guest");

    drop(server_end);
    assert!(wait_for(&mut d, |_| !dev.lock().unwrap().chardev().is_connected()));
    d.used(TX);
    let head = send(&mut d, b"lost");
    assert_eq!(d.used(TX), vec![(head, 0)]);
}

// ---- Pty backend ----

#[test]
fn pty_drops_output_until_opened_then_carries_both_ways() {
    let chardev = Chardev::open("p0", &ChardevBackend::Pty).unwrap();
    let path = chardev.pty_path().unwrap().to_path_buf();
    assert!(path.starts_with("/dev/pts"));
    let (mut d, dev) = console(chardev);

    // Nobody has the slave open: output is dropped, the guest not held up.
    let big = vec![b'x'; 64 << 10];
    for _ in 0..4 {
        send(&mut d, &big);
    }
    assert_eq!(d.used(TX).len(), 4);
    assert_eq!(dev.lock().unwrap().chardev().dropped_output(), 4 * (64 << 10));

    let mut slave =
        OpenOptions::new().read(true).write(true).custom_flags(libc::O_NOCTTY | libc::O_NONBLOCK).open(&path).unwrap();
    assert!(wait_for(&mut d, |_| dev.lock().unwrap().chardev().is_connected()));

    send(&mut d, b"hello\n");
    assert_eq!(read_exactly(&mut slave, 6), b"hello\n", "raw mode: no CR added");

    let mut rx = RxBuffers::default();
    rx.post(&mut d, 1, 64);
    d.notify(RX as u32);
    slave.write_all(b"typed").unwrap();
    assert!(wait_for(&mut d, |d| {
        rx.collect(d);
        rx.received.len() == 5
    }));
    assert_eq!(rx.received, b"typed");
    assert!(drain(&mut slave).is_empty(), "raw mode: no echo");

    drop(slave);
    assert!(wait_for(&mut d, |_| !dev.lock().unwrap().chardev().is_connected()));
    d.used(TX);
    let head = send(&mut d, b"gone");
    assert_eq!(d.used(TX), vec![(head, 0)]);
}

// ---- Errors ----

fn open_error(backend: ChardevBackend) -> String {
    match Chardev::open("c9", &backend) {
        Ok(_) => panic!("{backend:?} opened"),
        Err(e) => e.to_string(),
    }
}

fn assert_one_line_naming(message: &str, path: &std::path::Path) {
    assert!(!message.contains('\n'), "{message}");
    assert!(message.contains(&*path.to_string_lossy()), "{message}");
    assert!(message.contains("'c9'"), "{message}");
}

#[test]
fn a_file_in_a_missing_directory_is_a_one_line_error() {
    let dir = temp_dir();
    let path = dir.as_path().join("missing/console.log");
    let message = open_error(ChardevBackend::File { path: path.clone(), append: false });
    assert_one_line_naming(&message, &path);
}

#[test]
fn a_socket_in_a_missing_directory_is_a_one_line_error() {
    let dir = temp_dir();
    let path = dir.as_path().join("missing/console.sock");
    let message = open_error(ChardevBackend::Socket { path: path.clone(), server: true, wait: false });
    assert_one_line_naming(&message, &path);
}

#[test]
fn connecting_to_nothing_is_a_one_line_error() {
    let dir = temp_dir();
    let path = dir.as_path().join("nobody.sock");
    let message = open_error(ChardevBackend::Socket { path: path.clone(), server: false, wait: false });
    assert_one_line_naming(&message, &path);
}

#[test]
fn a_server_socket_does_not_replace_a_regular_file() {
    let dir = temp_dir();
    let path = dir.as_path().join("precious.txt");
    std::fs::write(&path, "keep me").unwrap();
    let err = Chardev::open("c9", &ChardevBackend::Socket { path: path.clone(), server: true, wait: false });
    assert!(matches!(err, Err(ChardevError::NotASocket { .. })));
    assert_one_line_naming(&err.err().unwrap().to_string(), &path);
    assert_eq!(std::fs::read_to_string(&path).unwrap(), "keep me");
}
