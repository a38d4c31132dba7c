use super::*;

#[test]
fn requests_are_framed_by_their_length() {
    let get = b"GET http://169.254.169.254/latest?x=1 HTTP/1.0\r\nConnection: keep-alive\r\n\r\nGET /next";
    let Parsed::Complete(request, used) = parse(get, 1000) else { panic!() };
    assert_eq!((request.path.as_str(), request.http10, request.keep_alive), ("/latest", true, true));
    assert_eq!(&get[used..], b"GET /next", "the next request stays");
    assert_eq!(parse(&get[used..], 1000), Parsed::Incomplete);
    let put = b"PUT /latest/api/token HTTP/1.1\r\nContent-Length: 4\r\n\r\nab";
    assert_eq!(parse(put, 1000), Parsed::Incomplete, "waits for the body");
    assert!(matches!(parse(b"PUT / HTTP/1.1\r\nContent-Length: 5000\r\n\r\n", 1000), Parsed::Bad(_)));
    assert!(matches!(parse(b"GET / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n", 1000), Parsed::Bad(_)));
    assert!(matches!(parse(&[b'a'; 1000], 1000), Parsed::Bad(_)), "no end of headers within the limit");
}

#[test]
fn answers_carry_firecrackers_headers() {
    let a = Answer {
        status: 200,
        json: false,
        body: "tok".into(),
        echo: Some(("x-metadata-token-ttl-seconds".into(), "60".into())),
    };
    let text = String::from_utf8(a.to_bytes(false, true)).unwrap();
    assert_eq!(
        text,
        "HTTP/1.1 200 OK\r\nServer: Firecracker API\r\nConnection: keep-alive\r\nContent-Type: text/plain\r\n\
         Content-Length: 3\r\nx-metadata-token-ttl-seconds: 60\r\n\r\ntok"
    );
    let text = String::from_utf8(Answer::text(405, "no").to_bytes(true, false)).unwrap();
    assert!(text.starts_with("HTTP/1.0 405 Method Not Allowed\r\n") && text.contains("Allow: GET, PUT\r\n"));
}
