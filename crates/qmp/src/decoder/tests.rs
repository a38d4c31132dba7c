use serde_json::json;

use super::*;

fn decode_chunks(chunks: &[&[u8]]) -> Vec<Decoded> {
    let mut decoder = Decoder::new();
    let mut out = Vec::new();
    for chunk in chunks {
        decoder.feed(chunk, &mut out).unwrap();
    }
    out
}

fn decode(input: &[u8]) -> Vec<Decoded> {
    decode_chunks(&[input])
}

fn is_error(decoded: &Decoded) -> bool {
    matches!(decoded, Decoded::Error(e) if e.desc.starts_with("JSON parse error, "))
}

const CAPABILITIES: &[u8] = b"{\"execute\": \"qmp_capabilities\"}";

#[test]
fn value_split_byte_by_byte_is_decoded_once_complete() {
    let mut decoder = Decoder::new();
    let mut out = Vec::new();
    let input = b"{\"execute\": \"query-status\", \"arguments\": {\"a\": [1, {\"b\": \"}]\"}]}, \"id\": 7}";
    for (i, byte) in input.iter().enumerate() {
        decoder.feed(std::slice::from_ref(byte), &mut out).unwrap();
        assert_eq!(out.is_empty(), i + 1 < input.len(), "after byte {i}");
    }
    assert_eq!(
        out,
        [Decoded::Value(json!({"execute": "query-status", "arguments": {"a": [1, {"b": "}]"}]}, "id": 7}))]
    );
    assert!(!decoder.is_pending());
}

#[test]
fn several_values_in_one_chunk_with_or_without_whitespace() {
    let out = decode(b" {\"a\": 1}{\"b\": 2}\r\n\t[3] \"s\" 42\n");
    assert_eq!(
        out,
        [
            Decoded::Value(json!({"a": 1})),
            Decoded::Value(json!({"b": 2})),
            Decoded::Value(json!([3])),
            Decoded::Value(json!("s")),
            Decoded::Value(json!(42)),
        ]
    );
}

#[test]
fn top_level_number_waits_for_its_delimiter() {
    let out = decode_chunks(&[b"12", b"34", b" "]);
    assert_eq!(out, [Decoded::Value(json!(1234))]);
}

#[test]
fn single_quoted_strings_and_quote_escape_are_accepted() {
    let out = decode(b"{'execute': 'it\\'s \"x\"', \"b\": \"a\\'b\\n\"}");
    assert_eq!(out, [Decoded::Value(json!({"execute": "it's \"x\"", "b": "a'b\n"}))]);
}

#[test]
fn syntax_error_in_balanced_value_is_one_error_and_next_value_decodes() {
    let mut input = b"{\"execute\": }".to_vec();
    input.extend_from_slice(CAPABILITIES);
    let out = decode(&input);
    assert_eq!(out.len(), 2);
    assert_eq!(out[0], Decoded::Error(QmpError::generic("JSON parse error, expecting value")));
    assert_eq!(out[1], Decoded::Value(json!({"execute": "qmp_capabilities"})));
}

#[test]
fn garbage_line_gives_one_error_then_next_line_is_answered() {
    let mut input = b"hello world }}] ::\n".to_vec();
    input.extend_from_slice(CAPABILITIES);
    let out = decode(&input);
    assert_eq!(out.len(), 2, "{out:?}");
    assert!(is_error(&out[0]));
    assert_eq!(out[1], Decoded::Value(json!({"execute": "qmp_capabilities"})));
}

#[test]
fn binary_garbage_and_invalid_utf8_give_one_error_and_resynchronise() {
    let mut input: Vec<u8> = (0u8..=255).rev().chain(0x80..0xff).collect();
    input.extend_from_slice(b"\xff\xfe\x80{\"x\": \"\xc3\x28\"}\n");
    input.extend_from_slice(CAPABILITIES);
    let out = decode(&input);
    // The 0x0a inside the first run ends one garbage line, so there is a second error.
    let errors = out.iter().filter(|d| is_error(d)).count();
    assert!((1..=2).contains(&errors), "{out:?}");
    assert_eq!(out.last(), Some(&Decoded::Value(json!({"execute": "qmp_capabilities"}))));
}

#[test]
fn invalid_utf8_inside_a_string_is_a_parse_error() {
    let out = decode(b"{\"execute\": \"\xc3\x28\"}");
    assert_eq!(out.len(), 1);
    assert!(is_error(&out[0]), "{out:?}");
}

#[test]
fn stray_byte_is_reported_like_qemu() {
    let out = decode(b"\xff");
    assert_eq!(out, [Decoded::Error(QmpError::generic("JSON parse error, stray '\\xff'"))]);
}

#[test]
fn control_character_resets_a_half_received_value() {
    // The spec's way for a client to get the parser back into a known state.
    let mut input = b"{\"execute\": \"qmp_cap".to_vec();
    input.push(0x04);
    input.extend_from_slice(CAPABILITIES);
    let out = decode(&input);
    assert_eq!(out.len(), 2, "{out:?}");
    assert!(is_error(&out[0]));
    assert_eq!(out[1], Decoded::Value(json!({"execute": "qmp_capabilities"})));
}

#[test]
fn newline_inside_a_string_is_an_error_and_resynchronises_there() {
    let mut input = b"{\"execute\": \"a\n".to_vec();
    input.extend_from_slice(CAPABILITIES);
    let out = decode(&input);
    assert_eq!(out.len(), 2, "{out:?}");
    assert!(is_error(&out[0]));
}

#[test]
fn deep_nesting_is_refused_without_overflowing_the_stack() {
    let mut input = vec![b'['; 100_000];
    input.push(b'\n');
    input.extend_from_slice(CAPABILITIES);
    let out = decode(&input);
    assert_eq!(
        out,
        [
            Decoded::Error(QmpError::generic("JSON nesting depth limit exceeded")),
            Decoded::Value(json!({"execute": "qmp_capabilities"})),
        ]
    );
}

#[test]
fn nesting_up_to_the_limit_is_accepted() {
    let input: Vec<u8> = [vec![b'['; MAX_NESTING], vec![b']'; MAX_NESTING]].concat();
    let out = decode(&input);
    assert!(matches!(out.as_slice(), [Decoded::Value(_)]), "{out:?}");
}

#[test]
fn huge_request_is_fatal() {
    let mut decoder = Decoder::new();
    let mut out = Vec::new();
    decoder.feed(b"{\"execute\": \"x\", \"arguments\": {\"blob\": \"", &mut out).unwrap();
    let chunk = vec![b'a'; 64 * 1024];
    let mut result = Ok(());
    for _ in 0..(MAX_REQUEST_BYTES / chunk.len() + 1) {
        result = decoder.feed(&chunk, &mut out);
        if result.is_err() {
            break;
        }
    }
    assert_eq!(result, Err(DecodeError::RequestTooLarge));
    assert_eq!(out, [Decoded::Error(QmpError::generic("JSON token size limit exceeded"))]);
    assert_eq!(decoder.feed(CAPABILITIES, &mut out), Err(DecodeError::RequestTooLarge));
}

#[test]
fn request_just_under_the_limit_is_accepted() {
    let padding = MAX_REQUEST_BYTES - 100;
    let input = format!("{{\"execute\": \"x\", \"arguments\": {{\"blob\": \"{}\"}}}}", "a".repeat(padding));
    let out = decode(input.as_bytes());
    assert!(matches!(out.as_slice(), [Decoded::Value(_)]));
}

#[test]
fn whitespace_only_input_yields_nothing() {
    assert!(decode(b" \r\n\t\n").is_empty());
}
