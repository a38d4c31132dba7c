//! The TCP socket backend and the output log, through the public API.

use super::*;
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

fn read_some(dev: &mut Chardev) -> Vec<u8> {
    let mut buf = [0u8; 64];
    for _ in 0..200 {
        let n = dev.read_input(&mut buf).unwrap();
        if n > 0 {
            return buf[..n].to_vec();
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    Vec::new()
}

#[test]
fn tcp_server_serves_a_client_both_ways() {
    let port = free_port();
    let backend = ChardevBackend::Tcp { host: "127.0.0.1".into(), port, server: true, wait: false };
    let mut dev = Chardev::open("con", &backend).unwrap();
    assert!(!dev.is_connected(), "no client yet");
    assert_eq!(dev.write_output(b"lost"), 4);
    assert_eq!(dev.dropped_output(), 4);
    let mut client = TcpStream::connect(("127.0.0.1", port)).unwrap();
    for _ in 0..200 {
        dev.accept();
        if dev.is_connected() {
            break;
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    assert!(dev.is_connected());
    assert_eq!(dev.write_output(b"hello"), 5);
    let mut got = [0u8; 5];
    client.read_exact(&mut got).unwrap();
    assert_eq!(&got, b"hello");
    client.write_all(b"typed").unwrap();
    assert_eq!(read_some(&mut dev), b"typed");
}

#[test]
fn tcp_client_connects_or_says_where_it_could_not() {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let backend = ChardevBackend::Tcp { host: "127.0.0.1".into(), port, server: false, wait: false };
    let mut dev = Chardev::open("con", &backend).unwrap();
    let (mut peer, _) = listener.accept().unwrap();
    dev.write_output(b"out");
    let mut got = [0u8; 3];
    peer.read_exact(&mut got).unwrap();
    assert_eq!(&got, b"out");
    drop(listener);
    let backend = ChardevBackend::Tcp { host: "127.0.0.1".into(), port: free_port(), server: false, wait: false };
    let e = Chardev::open("con", &backend).err().expect("nobody listens");
    assert!(e.to_string().starts_with("chardev 'con': cannot connect to tcp 127.0.0.1:"), "{e}");
}

#[test]
fn logfile_gets_the_output_truncated_or_appended() {
    let path = std::env::temp_dir().join(format!("microvm-chardev-log-{}", std::process::id()));
    std::fs::write(&path, "old\n").unwrap();
    let mut dev = Chardev::open("n", &ChardevBackend::Null).unwrap();
    dev.set_logfile(&path, false).unwrap();
    dev.write_output(b"one\n");
    assert_eq!(std::fs::read_to_string(&path).unwrap(), "one\n");
    let mut dev = Chardev::open("n", &ChardevBackend::Null).unwrap();
    dev.set_logfile(&path, true).unwrap();
    dev.write_output(b"two\n");
    assert_eq!(std::fs::read_to_string(&path).unwrap(), "one\ntwo\n");
    std::fs::remove_file(&path).unwrap();
    let e = dev.set_logfile(Path::new("/nonexistent/dir/log"), false).unwrap_err();
    assert!(e.to_string().contains("cannot open log file /nonexistent/dir/log"), "{e}");
}
