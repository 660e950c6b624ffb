//! Unit tests: one per rule and return code, table-driven where rules come in families.

use std::ffi::OsStr;
use std::net::{Ipv4Addr, SocketAddrV4};
use std::os::unix::ffi::OsStrExt;
use std::path::PathBuf;

use super::parse::parse_int;
use super::render::encode;
use super::*;

mod channels;
mod render;

/// A minimal valid manifest: lines 1-4 the scalar keys, 5-7 the standard channels.
const BASE: &str = "Version = 20130611
Program = /bin/prog
Memory = 4294967296, 0
Timeout = 50
Channel = /dev/stdin, /dev/stdin, 0, 0, 4294967296, 4294967296, 0, 0
Channel = /dev/stdout, /dev/stdout, 0, 0, 0, 0, 4294967296, 4294967296
Channel = /dev/stderr, /dev/stderr, 0, 0, 0, 0, 4294967296, 4294967296
";

/// `BASE` plus `extra` from line 8 on.
fn with(extra: &str) -> String {
    format!("{BASE}{extra}\n")
}

/// `BASE` plus one channel line (line 8).
fn chan(fields: &str) -> String {
    with(&format!("Channel = {fields}"))
}

/// `BASE` with line `n` (1-based) replaced by `text`, line numbers unchanged.
fn set(n: usize, text: &str) -> String {
    let mut lines: Vec<&str> = BASE.lines().collect();
    lines[n - 1] = text;
    lines.join("\n") + "\n"
}

fn ok(text: impl Into<Vec<u8>>) -> Manifest {
    parse(&text.into()).unwrap_or_else(|e| panic!("should parse: {e}"))
}

fn err(text: impl Into<Vec<u8>>) -> ManifestError {
    parse(&text.into()).expect_err("should be rejected")
}

/// The manifest with every channel's line set to 0, as if built in code.
fn without_lines(mut m: Manifest) -> Manifest {
    for c in &mut m.channels {
        c.line = 0;
    }
    m
}

const READ: Limits = Limits { puts: 0, put_size: 0, ..Limits::UNLIMITED };
const WRITE: Limits = Limits { gets: 0, get_size: 0, ..Limits::UNLIMITED };

fn path(p: &str) -> ChannelSource {
    ChannelSource::Path(PathBuf::from(p))
}

/// `BASE`, built in code.
fn built() -> Manifest {
    let seq = AccessType::SeqGetSeqPut;
    Manifest {
        program: PathBuf::from("/bin/prog"),
        memory: 4 << 30,
        memory_etag: false,
        timeout: 50,
        channels: vec![
            ChannelSpec::new(path("/dev/stdin"), "/dev/stdin", seq, READ),
            ChannelSpec::new(path("/dev/stdout"), "/dev/stdout", seq, WRITE),
            ChannelSpec::new(path("/dev/stderr"), "/dev/stderr", seq, WRITE),
        ],
        node: None,
        name_server: None,
        job: None,
        etag: None,
        args: vec![],
        env: vec![],
    }
}

/// One `#[test]` per rejected manifest: `name: text => code at line, "message";`.
macro_rules! rejects {
    ($($name:ident: $text:expr => $code:ident at $line:expr, $message:expr;)+) => {$(
        #[test]
        fn $name() {
            let e = err($text);
            let got = (e.code, e.line, e.message.as_str());
            assert_eq!(got, (ReturnCode::$code, $line, $message), "{e}");
        }
    )+};
}

rejects! {
    // Text limits, checked before anything else.
    rejects_manifest_over_512_kib: with(&"#".repeat(MAX_FILE_BYTES))
        => Malformed at None, "manifest is larger than 524288 bytes";
    size_limit_is_checked_before_utf8: [BASE.as_bytes(), vec![0xff; MAX_FILE_BYTES].as_slice()].concat()
        => Malformed at None, "manifest is larger than 524288 bytes";
    rejects_more_than_8192_lines: with(&"\n".repeat(MAX_LINES - 7))
        => Malformed at None, "manifest has more than 8192 lines";
    rejects_non_utf8_line_naming_it: [BASE.as_bytes(), &b"# caf\xe9\n"[..]].concat()
        => Malformed at Some(8), "line is not valid UTF-8";
    rejects_non_utf8_even_in_an_ignored_line: [&b"# \xff\n"[..], BASE.as_bytes()].concat()
        => Malformed at Some(1), "line is not valid UTF-8";
    rejects_value_with_more_than_16_tokens: chan("/a, /dev/a, 0, 0, 1, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0")
        => Malformed at Some(8), "Channel value has more than 16 tokens";
    rejects_empty_manifest: ""
        => Malformed at None, "empty manifest";
    rejects_whitespace_only_manifest: " \n\t\r\n"
        => Malformed at None, "empty manifest";
    rejects_manifest_of_ignored_lines_as_missing_version: "hello\nworld\n"
        => Malformed at None, "Version not specified";

    // Scalar keys.
    rejects_wrong_version: set(1, "Version = 20140320")
        => Malformed at Some(1), "invalid manifest version '20140320' (expected 20130611)";
    rejects_empty_program: set(2, "Program =")
        => Malformed at Some(2), "Program is empty";
    rejects_program_with_nul: set(2, "Program = /bin/a\0b")
        => Malformed at Some(2), "Program contains a NUL byte";
    rejects_memory_without_etag: set(3, "Memory = 4096")
        => Malformed at Some(3), "Memory needs 2 tokens (size, etag), found 1";
    rejects_memory_with_three_tokens: set(3, "Memory = 4096, 0, 0")
        => Malformed at Some(3), "Memory needs 2 tokens (size, etag), found 3";
    rejects_memory_etag_other_than_0_or_1: set(3, "Memory = 4096, 2")
        => Malformed at Some(3), "invalid memory etag token";
    memory_etag_error_wins_over_size_error: set(3, "Memory = 0, 2")
        => Malformed at Some(3), "invalid memory etag token";
    memory_over_4gib_is_code_12: set(3, "Memory = 4294967297, 0")
        => BadMemory at Some(3), "invalid memory size 4294967297: must be 1 to 4294967296 bytes";
    memory_zero_is_code_12: set(3, "Memory = 0, 1")
        => BadMemory at Some(3), "invalid memory size 0: must be 1 to 4294967296 bytes";
    negative_memory_is_code_12: set(3, "Memory = -4096, 0")
        => BadMemory at Some(3), "invalid memory size -4096: must be 1 to 4294967296 bytes";
    garbage_memory_size_is_code_14: set(3, "Memory = 4G, 0")
        => Malformed at Some(3), "invalid number '4G' in Memory size";
    rejects_zero_timeout: set(4, "Timeout = 0")
        => Malformed at Some(4), "invalid Timeout 0: must be 1 to 2147483647 seconds";
    rejects_negative_timeout: set(4, "Timeout = -1")
        => Malformed at Some(4), "invalid Timeout -1: must be 1 to 2147483647 seconds";
    // Issue 9: this passed the check and then overflowed `now + Timeout` in zvsh.
    rejects_timeout_the_clock_cannot_hold: set(4, "Timeout = 9223372036854775807")
        => Malformed at Some(4), "Timeout 9223372036854775807 is more than the largest supported (2147483647 seconds)";
    rejects_timeout_one_past_the_largest: set(4, "Timeout = 0x80000000")
        => Malformed at Some(4), "Timeout 2147483648 is more than the largest supported (2147483647 seconds)";
    garbage_in_a_number_names_the_key: set(4, "Timeout = 5s")
        => Malformed at Some(4), "invalid number '5s' in Timeout";
    rejects_number_beyond_i64: set(4, "Timeout = 9223372036854775808")
        => Malformed at Some(4), "invalid number '9223372036854775808' in Timeout";
    rejects_zero_node: with("Node = 0")
        => Malformed at Some(8), "invalid Node 0: must be 1 to 4294967295";
    rejects_node_beyond_u32: with("Node = 4294967296")
        => Malformed at Some(8), "invalid Node 4294967296: must be 1 to 4294967295";
    rejects_empty_job: with("Job =")
        => Malformed at Some(8), "Job is empty";
    rejects_etag_with_nul: with("Etag = a\0")
        => Malformed at Some(8), "Etag contains a NUL byte";

    // NameServer and Node.
    rejects_name_server_other_than_udp: with("Node = 1\nNameServer = tcp:10.0.0.1:5000")
        => Malformed at Some(9), "invalid NameServer 'tcp:10.0.0.1:5000': expected udp:<ipv4>:<port>";
    rejects_name_server_ip_of_three_parts: with("Node = 1\nNameServer = udp:10.0.1:5000")
        => Malformed at Some(9), "invalid NameServer 'udp:10.0.1:5000': expected udp:<ipv4>:<port>";
    rejects_name_server_without_port: with("Node = 1\nNameServer = udp:10.0.0.1")
        => Malformed at Some(9), "invalid NameServer 'udp:10.0.0.1': expected udp:<ipv4>:<port>";
    rejects_name_server_port_zero: with("Node = 1\nNameServer = udp:10.0.0.1:0")
        => Malformed at Some(9), "invalid NameServer port 0: must be 1 to 65535";
    rejects_name_server_port_beyond_u16: with("Node = 1\nNameServer = udp:10.0.0.1:65536")
        => Malformed at Some(9), "invalid NameServer port 65536: must be 1 to 65535";
    rejects_garbage_name_server_port: with("Node = 1\nNameServer = udp:10.0.0.1:dns")
        => Malformed at Some(9), "invalid number 'dns' in NameServer port";
    rejects_name_server_without_node: with("NameServer = udp:10.0.0.1:5000")
        => Malformed at Some(8), "NameServer needs Node";
    rejects_node_id_endpoint_without_node: chan("tcp:2:, /dev/in, 0, 0, 1, 1, 0, 0")
        => Malformed at Some(8), "/dev/in names a node id, which needs Node";
    node_errors_come_in_line_order: with("Channel = tcp:2:, /dev/in, 0, 0, 1, 1, 0, 0\nNameServer = udp:10.0.0.1:5000")
        => Malformed at Some(8), "/dev/in names a node id, which needs Node";

    // Channel fields.
    rejects_channel_with_seven_fields: chan("/a, /dev/a, 0, 0, 1, 1, 0")
        => Malformed at Some(8), "Channel needs 8 fields (uri, alias, type, etag, gets, get_size, puts, put_size), found 7";
    rejects_channel_with_nine_fields: chan("/a, /dev/a, 0, 0, 1, 1, 0, 0, 0")
        => Malformed at Some(8), "Channel needs 8 fields (uri, alias, type, etag, gets, get_size, puts, put_size), found 9";
    rejects_relative_channel_path: chan("in.txt, /dev/in, 0, 0, 1, 1, 0, 0")
        => Malformed at Some(8), "only absolute path channels are allowed: 'in.txt'";
    rejects_empty_channel_uri: chan(", /dev/in, 0, 0, 1, 1, 0, 0")
        => Malformed at Some(8), "only absolute path channels are allowed: ''";
    rejects_channel_path_with_nul: chan("/in\0, /dev/in, 0, 0, 1, 1, 0, 0")
        => Malformed at Some(8), "channel path contains a NUL byte";
    rejects_protocol_other_than_tcp: chan("udp:10.0.0.1:5, /dev/in, 0, 0, 1, 1, 0, 0")
        => Malformed at Some(8), "unsupported channel protocol 'udp' (only tcp)";
    rejects_url_without_port_field: chan("tcp:10.0.0.1, /dev/in, 0, 0, 1, 1, 0, 0")
        => Malformed at Some(8), "invalid channel url 'tcp:10.0.0.1': expected tcp:<host>:<port>";
    rejects_malformed_ip: chan("tcp:10.0.1:5, /dev/in, 0, 0, 1, 1, 0, 0")
        => Malformed at Some(8), "malformed ip '10.0.1'";
    rejects_garbage_node_id: chan("tcp:two:5, /dev/in, 0, 0, 1, 1, 0, 0")
        => Malformed at Some(8), "invalid number 'two' in Channel node id";
    rejects_negative_node_id: chan("tcp:-1:5, /dev/in, 0, 0, 1, 1, 0, 0")
        => Malformed at Some(8), "invalid node id -1";
    rejects_node_id_zero: chan("tcp:0:5, /dev/in, 0, 0, 1, 1, 0, 0")
        => Malformed at Some(8), "invalid node id 0 in /dev/in";
    rejects_port_beyond_u16: chan("tcp:10.0.0.1:65536, /dev/in, 0, 0, 1, 1, 0, 0")
        => Malformed at Some(8), "invalid port 65536: must be 0 to 65535";
    rejects_garbage_port: chan("tcp:10.0.0.1:http, /dev/in, 0, 0, 1, 1, 0, 0")
        => Malformed at Some(8), "invalid number 'http' in Channel port";
    rejects_path_among_replicas: chan("tcp:1:5;/dev/x, /dev/in, 0, 0, 1, 1, 0, 0")
        => Malformed at Some(8), "only tcp: endpoints can be joined with ';': '/dev/x'";
    rejects_more_than_16_replicas: chan(&format!("{}, /dev/in, 0, 0, 1, 1, 0, 0", ["tcp:1:5"; 17].join(";")))
        => Malformed at Some(8), "Channel has more than 16 sources";
    rejects_empty_alias: chan("/a, , 0, 0, 1, 1, 0, 0")
        => Malformed at Some(8), "channel alias is empty";
    rejects_type_above_3: chan("/a, /dev/a, 4, 0, 1, 1, 0, 0")
        => Malformed at Some(8), "invalid channel type 4: must be 0 to 3";
    rejects_negative_type: chan("/a, /dev/a, -1, 0, 1, 1, 0, 0")
        => Malformed at Some(8), "invalid channel type -1: must be 0 to 3";
    rejects_channel_etag_other_than_0_or_1: chan("/a, /dev/a, 0, 2, 1, 1, 0, 0")
        => Malformed at Some(8), "invalid channel etag token 2: must be 0 or 1";
    rejects_negative_limits: chan("/a, /dev/a, 0, 0, 1, 1, 0, -1")
        => Malformed at Some(8), "negative limits for /dev/a";
    garbage_limit_names_the_field: chan("/a, /dev/a, 0, 0, 1, 1k, 0, 0")
        => Malformed at Some(8), "invalid number '1k' in Channel get_size";
    all_zero_limits_is_code_22: chan("/a, /dev/a, 0, 0, 0, 0, 0, 0")
        => InvalidIoType at Some(8), "invalid i/o type: /dev/a is neither readable nor writable";
    neither_side_is_code_22: chan("/a, /dev/a, 0, 0, 5, 0, 0, 5")
        => InvalidIoType at Some(8), "invalid i/o type: /dev/a is neither readable nor writable";
    rejects_read_write_with_type_0: chan("/a, /dev/a, 0, 0, 1, 1, 1, 1")
        => Malformed at Some(8), "/dev/a is readable and writable, which needs type 1 or 3 (not 0)";
    rejects_read_write_with_type_2: chan("/a, /dev/a, 2, 0, 1, 1, 1, 1")
        => Malformed at Some(8), "/dev/a is readable and writable, which needs type 1 or 3 (not 2)";
    rejects_duplicate_alias: chan("/tmp/in, /dev/stdin, 0, 0, 1, 1, 0, 0")
        => Malformed at Some(8), "duplicate channel alias /dev/stdin";

    // Which error wins.
    first_error_in_line_order_wins: with("Timeout = 0\nMemory = 0, 0").replace("Timeout = 50", "Timeout = x")
        => Malformed at Some(4), "invalid number 'x' in Timeout";
    line_errors_win_over_missing_keys: set(1, "Memory = 1, 1")
        => Malformed at Some(3), "duplicate Memory keyword";

    // Extension: Arg and Env.
    rejects_arg_with_raw_comma: with("Arg = a,b")
        => Malformed at Some(8), "Arg takes one token: write ',' as %2C";
    rejects_truncated_percent_escape: with("Arg = 100%")
        => Malformed at Some(8), "Arg has an invalid percent escape (expected %XX)";
    rejects_non_hex_percent_escape: with("Arg = %zz")
        => Malformed at Some(8), "Arg has an invalid percent escape (expected %XX)";
    rejects_signed_percent_escape: with("Arg = %+1")
        => Malformed at Some(8), "Arg has an invalid percent escape (expected %XX)";
    rejects_arg_not_utf8_after_decoding: with("Arg = %FF")
        => Malformed at Some(8), "Arg is not valid UTF-8 after percent-decoding";
    rejects_arg_with_nul: with("Arg = a%00")
        => Malformed at Some(8), "Arg contains a NUL byte";
    rejects_env_of_one_token: with("Env = PATH")
        => Malformed at Some(8), "Env needs 2 tokens (NAME, VALUE), found 1";
    rejects_env_of_three_tokens: with("Env = A, b, c")
        => Malformed at Some(8), "Env needs 2 tokens (NAME, VALUE), found 3";
    rejects_env_with_empty_name: with("Env = , x")
        => Malformed at Some(8), "Env name is empty";
    rejects_env_name_with_equals: with("Env = A%3DB, x")
        => Malformed at Some(8), "Env name contains '='";
    rejects_env_value_with_nul: with("Env = A, %00")
        => Malformed at Some(8), "Env contains a NUL byte";
    rejects_bad_escape_in_env_name: with("Env = %G0, x")
        => Malformed at Some(8), "Env name has an invalid percent escape (expected %XX)";
    rejects_bad_escape_in_env_value: with("Env = A, %4")
        => Malformed at Some(8), "Env value has an invalid percent escape (expected %XX)";
}

#[test]
fn reports_each_missing_required_key() {
    let without_channels = BASE.lines().filter(|l| !l.starts_with("Channel")).collect::<Vec<_>>().join("\n");
    let cases = [
        (set(1, ""), "Version not specified"),
        (set(2, ""), "Program not specified"),
        (set(3, ""), "Memory not specified"),
        (set(4, ""), "Timeout not specified"),
        (without_channels, "Channel not specified"),
    ];
    for (text, message) in cases {
        let e = err(text);
        assert_eq!((e.code, e.line, e.message.as_str()), (ReturnCode::Malformed, None, message));
    }
}

#[test]
fn rejects_repeated_once_only_keys() {
    let cases = [
        ("Version = 20130611", "Version"),
        ("Program = /bin/other", "Program"),
        ("Memory = 4096, 0", "Memory"),
        ("Timeout = 1", "Timeout"),
        ("Node = 1\nNode = 1", "Node"),
        ("Node = 1\nNameServer = udp:1.2.3.4:5\nNameServer = udp:1.2.3.4:5", "NameServer"),
        ("Job = /j\nJob = /j", "Job"),
        ("Etag = a\nEtag = a", "Etag"),
    ];
    for (extra, key) in cases {
        let text = with(extra);
        let e = err(text.as_str());
        let last_line = text.lines().count();
        let expected = format!("duplicate {key} keyword");
        assert_eq!((e.code, e.line, e.message), (ReturnCode::Malformed, Some(last_line), expected));
    }
}

#[test]
fn rejects_each_missing_standard_channel() {
    for (n, alias) in [(5, "/dev/stdin"), (6, "/dev/stdout"), (7, "/dev/stderr")] {
        let e = err(set(n, ""));
        let expected = format!("{alias} channel not specified");
        assert_eq!((e.code, e.line, e.message), (ReturnCode::Malformed, None, expected));
    }
}

#[test]
fn parses_the_base_manifest_into_its_fields() {
    let m = ok(BASE);
    assert_eq!(without_lines(m.clone()), built());
    let lines: Vec<usize> = m.channels.iter().map(|c| c.line).collect();
    assert_eq!(lines, [5, 6, 7]);
}

#[test]
fn accepts_manifest_of_exactly_the_limits() {
    let padded = with(&"#".repeat(MAX_FILE_BYTES - BASE.len() - 1));
    assert_eq!(padded.len(), MAX_FILE_BYTES);
    ok(padded);
    let lines = with(&"\n".repeat(MAX_LINES - 8));
    assert_eq!(lines.lines().count(), MAX_LINES);
    ok(lines);
    let etag = ok(with(&format!("Etag = {}", ["t"; MAX_TOKENS].join(","))));
    assert_eq!(etag.etag.map(|e| e.len()), Some(2 * MAX_TOKENS - 1));
}

#[test]
fn reads_numbers_in_all_three_bases() {
    let m = ok(set(3, "Memory = 0x1000, 1").replace("Timeout = 50", "Timeout = 062"));
    assert_eq!((m.memory, m.memory_etag, m.timeout), (4096, true, 50));
    let c = &ok(chan("/a, /dev/a, 0x3, 0, 010, 0X10, -0, +7")).channels[3];
    let expected = Limits { gets: 8, get_size: 16, puts: 0, put_size: 7 };
    assert_eq!((c.access, c.limits), (AccessType::RandGetRandPut, expected));
}

#[test]
fn reads_numbers_like_strtoll() {
    let accepted = [
        ("0", 0),
        ("42", 42),
        ("-42", -42),
        ("+42", 42),
        ("017", 15),
        ("0x1f", 31),
        ("0XFF", 255),
        ("-0x10", -16),
        ("  7 ", 7),
        ("9223372036854775807", i64::MAX),
        ("-9223372036854775808", i64::MIN),
    ];
    for (text, value) in accepted {
        assert_eq!(parse_int(text), Some(value), "{text:?}");
    }
    let rejected = [
        "",
        "-",
        "+",
        "0x",
        "08",
        "1e3",
        "1.5",
        "--1",
        "+-1",
        "0x-1",
        "0x+1",
        "- 1",
        "١",
        "9223372036854775808",
        "-9223372036854775809",
        "0x10000000000000000",
    ];
    for text in rejected {
        assert_eq!(parse_int(text), None, "{text:?}");
    }
}

#[test]
fn trims_whitespace_around_keys_values_and_tokens() {
    let text = "\t Version\t=  20130611 \r\n\
                Program =\t/bin/prog\t\r\n\
                Memory = 4294967296 ,\t0\r\n\
                Timeout=50\r\n\
                Channel=/dev/stdin,/dev/stdin,0,0,4294967296,4294967296,0,0\r\n\
                \x20 Channel =  /dev/stdout ,  /dev/stdout , 0 , 0 , 0 , 0 , 4294967296 , 4294967296  \r\n\
                Channel = /dev/stderr, /dev/stderr, 0, 0, 0, 0, 4294967296, 4294967296\r\n\
                Arg =  two%20words \r\n";
    let m = ok(text);
    assert_eq!(m.args, ["two words"]);
    assert_eq!(without_lines(Manifest { args: vec![], ..m }), built());
}

#[test]
fn ignores_unknown_keys_and_malformed_lines() {
    let extra = "# a comment\n\
                 no equals sign here\n\
                 Timeout = 1 = 2\n\
                 Program == /other\n\
                 =\n\
                 = 5\n\
                 version = 1\n\
                 Memory size = 1, 1\n\
                 Broker = /tmp/broker\n\
                 Unknown = a, b, c, d, e, f, g, h, i, j, k, l, m, n, o, p, q\n";
    assert_eq!(without_lines(ok(with(extra))), built());
}

#[test]
fn stores_optional_keys() {
    let m = ok(with("Node = 3\nNameServer = UDP:10.0.0.1:54321\nJob = /tmp/zvm.sock\nEtag = abc, def"));
    assert_eq!(m.node, Some(3));
    assert_eq!(m.name_server, Some(SocketAddrV4::new(Ipv4Addr::new(10, 0, 0, 1), 54321)));
    assert_eq!(m.job, Some(PathBuf::from("/tmp/zvm.sock")));
    assert_eq!(m.etag.as_deref(), Some("abc, def"));
    assert_eq!(ok(with("Etag =")).etag.as_deref(), Some(""));
}

#[test]
fn program_may_be_any_non_empty_path() {
    for program in ["prog", "./a.out", "/bin/x:y", "/bin/a,b"] {
        let m = ok(set(2, &format!("Program = {program}")));
        assert_eq!(m.program, PathBuf::from(program));
    }
}

#[test]
fn parses_channel_sources() {
    let ip = |a, b, c, d| NetHost::Ip(Ipv4Addr::new(a, b, c, d));
    let cases = [
        ("/tmp/a:b", path("/tmp/a:b")),
        ("tcp:10.0.0.1:80", ChannelSource::Network(vec![NetEndpoint { host: ip(10, 0, 0, 1), port: Some(80) }])),
        ("TCP:2:", ChannelSource::Network(vec![NetEndpoint { host: NetHost::Node(2), port: None }])),
        (
            "tcp:2:0 ; tcp : 1.2.3.4 : 0x50",
            ChannelSource::Network(vec![
                NetEndpoint { host: NetHost::Node(2), port: Some(0) },
                NetEndpoint { host: ip(1, 2, 3, 4), port: Some(80) },
            ]),
        ),
    ];
    for (uri, source) in cases {
        let m = ok(with(&format!("Node = 1\nChannel = {uri}, /dev/net, 0, 0, 1, 1, 0, 0")));
        assert_eq!(m.channels[3].source, source, "{uri}");
    }
}

#[test]
fn accepts_read_write_with_types_1_and_3() {
    for kind in [1, 3] {
        let m = ok(chan(&format!("/a, /dev/a, {kind}, 1, 1, 1, 1, 1")));
        let c = &m.channels[3];
        assert!(c.limits.readable() && c.limits.writable() && c.etag);
        assert_eq!(c.access.code(), kind);
    }
}

#[test]
fn decodes_arg_and_env_values() {
    let m = ok(with("Arg = a%2Cb%3Dc%25d%0Ae%20\nArg =\nArg = caf%C3%A9\nEnv = PATH, /bin%3A/usr/bin\nEnv = E, "));
    assert_eq!(m.args, ["a,b=c%d\ne ", "", "café"]);
    let env = [("PATH".into(), "/bin:/usr/bin".into()), ("E".into(), String::new())];
    assert_eq!(m.env, env);
}

#[test]
fn args_are_empty_without_arg_lines() {
    let m = ok(BASE);
    assert!(m.args.is_empty() && m.env.is_empty());
}

#[test]
fn error_display_names_the_line() {
    let cases = [
        (Some(14), "invalid memory etag token", "MANIFEST 14: invalid memory etag token"),
        (None, "Version not specified", "MANIFEST: Version not specified"),
    ];
    for (line, message, shown) in cases {
        let e = ManifestError::new(ReturnCode::Malformed, line, message);
        assert_eq!(e.to_string(), shown);
    }
    assert_eq!(err(set(3, "Memory = 1, 7")).to_string(), "MANIFEST 3: invalid memory etag token");
}

#[test]
fn validate_accepts_parsed_and_built_manifests() {
    ok(BASE).validate().expect("parsed");
    built().validate().expect("built");
}

#[test]
fn too_many_channels_is_code_23() {
    let spec = |i: usize| {
        let alias = format!("/dev/c{i}");
        ChannelSpec::new(path(&alias), alias, AccessType::SeqGetSeqPut, READ)
    };
    let mut m = built();
    m.channels.extend((3..MAX_CHANNELS).map(spec));
    m.validate().expect("10914 channels is the most");
    m.channels.push(spec(MAX_CHANNELS));
    let e = m.validate().expect_err("10915 channels");
    let expected = (ReturnCode::TooManyChannels, None, "too many channels: 10915 (at most 10914)");
    assert_eq!((e.code, e.line, e.message.as_str()), expected);
}

#[test]
fn validate_applies_the_content_rules() {
    type Edit = fn(&mut Manifest);
    let cases: [(Edit, ReturnCode, &str); 24] = [
        (|m| m.program = PathBuf::new(), ReturnCode::Malformed, "Program is empty"),
        (|m| m.program = "/a=b".into(), ReturnCode::Malformed, "Program contains a line break or '='"),
        (|m| m.program = "/a\nb".into(), ReturnCode::Malformed, "Program contains a line break or '='"),
        (|m| m.program = "/a ".into(), ReturnCode::Malformed, "Program has leading or trailing whitespace"),
        (|m| m.program = OsStr::from_bytes(b"/\xff").into(), ReturnCode::Malformed, "Program is not valid UTF-8"),
        (
            |m| m.program = format!("/{}", ",".repeat(MAX_TOKENS)).into(),
            ReturnCode::Malformed,
            "Program has more than 16 comma-separated tokens",
        ),
        (|m| m.memory = 0, ReturnCode::BadMemory, "invalid memory size 0: must be 1 to 4294967296 bytes"),
        (
            |m| m.timeout = u64::MAX,
            ReturnCode::Malformed,
            "Timeout 18446744073709551615 is more than the largest supported (2147483647 seconds)",
        ),
        (|m| m.node = Some(0), ReturnCode::Malformed, "invalid Node 0: must be 1 to 4294967295"),
        (
            |m| m.name_server = Some(SocketAddrV4::new(Ipv4Addr::LOCALHOST, 0)),
            ReturnCode::Malformed,
            "invalid NameServer port 0: must be 1 to 65535",
        ),
        (|m| m.job = Some(PathBuf::new()), ReturnCode::Malformed, "Job is empty"),
        (|m| m.etag = Some(" e".into()), ReturnCode::Malformed, "Etag has leading or trailing whitespace"),
        (|m| m.channels[0].alias = "/dev/a,b".into(), ReturnCode::Malformed, "channel alias contains ',' or ';'"),
        (|m| m.channels[0].source = path("/a;b"), ReturnCode::Malformed, "channel path contains ',' or ';'"),
        (
            |m| m.channels[0].source = path("rel"),
            ReturnCode::Malformed,
            "only absolute path channels are allowed: 'rel'",
        ),
        (
            |m| m.channels[0].source = ChannelSource::Network(vec![]),
            ReturnCode::Malformed,
            "/dev/stdin needs 1 to 16 network endpoints",
        ),
        (
            |m| m.channels[0].limits.gets = u64::MAX,
            ReturnCode::Malformed,
            "/dev/stdin gets 18446744073709551615 is more than the largest supported (9223372036854775807)",
        ),
        (
            |m| m.channels[0].limits = Limits::UNLIMITED,
            ReturnCode::Malformed,
            "/dev/stdin is readable and writable, which needs type 1 or 3 (not 0)",
        ),
        (|m| m.channels[1].alias = "/dev/stdin".into(), ReturnCode::Malformed, "duplicate channel alias /dev/stdin"),
        (|m| m.args = vec!["\0".into()], ReturnCode::Malformed, "Arg contains a NUL byte"),
        (|m| m.env = vec![(String::new(), "v".into())], ReturnCode::Malformed, "Env name is empty"),
        (|m| m.channels.clear(), ReturnCode::Malformed, "Channel not specified"),
        (
            |m| m.channels[0].source = ChannelSource::Network(vec![NetEndpoint { host: NetHost::Node(1), port: None }]),
            ReturnCode::Malformed,
            "/dev/stdin names a node id, which needs Node",
        ),
        (
            |m| m.name_server = Some(SocketAddrV4::new(Ipv4Addr::LOCALHOST, 53)),
            ReturnCode::Malformed,
            "NameServer needs Node",
        ),
    ];
    for (edit, code, message) in cases {
        let mut m = built();
        edit(&mut m);
        let e = m.validate().expect_err(message);
        assert_eq!((e.code, e.line, e.message.as_str()), (code, None, message));
    }
}

#[test]
fn validate_names_the_line_of_a_parsed_channel() {
    let mut m = ok(BASE);
    m.channels[1].limits = Limits { gets: 0, get_size: 0, puts: 0, put_size: 0 };
    let e = m.validate().expect_err("no side");
    assert_eq!((e.code, e.line), (ReturnCode::InvalidIoType, Some(6)));
}
