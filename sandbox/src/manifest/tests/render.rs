//! Rendering: canonical text, round trips through the parser, and the percent-encoding
//! of `Arg`/`Env` values.

use super::*;

#[test]
fn renders_canonical_text() {
    let mut m = built();
    m.node = Some(2);
    m.name_server = Some(SocketAddrV4::new(Ipv4Addr::new(10, 0, 0, 1), 5000));
    m.job = Some(PathBuf::from("/run/job.sock"));
    m.etag = Some(String::new());
    m.memory_etag = true;
    m.channels[2].etag = true;
    m.channels.push(ChannelSpec::new(
        ChannelSource::Network(vec![
            NetEndpoint { host: NetHost::Node(3), port: None },
            NetEndpoint { host: NetHost::Ip(Ipv4Addr::new(1, 2, 3, 4)), port: Some(80) },
        ]),
        "/dev/in/x",
        AccessType::RandGetSeqPut,
        Limits { gets: 1, get_size: 2, puts: 3, put_size: 4 },
    ));
    m.args = vec!["prog".into(), " a,b ".into()];
    m.env = vec![("K".into(), "v=1".into())];
    let expected = "Version = 20130611
Program = /bin/prog
Memory = 4294967296, 1
Timeout = 50
Node = 2
NameServer = udp:10.0.0.1:5000
Job = /run/job.sock
Etag =
Channel = /dev/stdin, /dev/stdin, 0, 0, 4294967296, 4294967296, 0, 0
Channel = /dev/stdout, /dev/stdout, 0, 0, 0, 0, 4294967296, 4294967296
Channel = /dev/stderr, /dev/stderr, 0, 1, 0, 0, 4294967296, 4294967296
Channel = tcp:3:;tcp:1.2.3.4:80, /dev/in/x, 1, 0, 1, 2, 3, 4
Arg = prog
Arg = %20a%2Cb%20
Env = K, v%3D1
";
    assert_eq!(m.render(), expected);
    assert_eq!(without_lines(ok(m.render())), m);
}

#[test]
fn render_then_parse_round_trips_awkward_args_and_env() {
    let awkward = [
        "",
        " ",
        "  lead",
        "trail  ",
        "a,b",
        "x=y",
        "100%",
        "%41",
        "line\nbreak",
        "cr\r\n",
        "\ttab\t",
        "ünï cødé",
        "\u{3000}wide\u{3000}",
        "Arg = nested",
        ";:#",
    ];
    let mut m = built();
    m.args = awkward.iter().map(|s| s.to_string()).collect();
    m.env = awkward.iter().map(|s| (format!("N{}", s.replace('=', "")), s.to_string())).collect();
    m.validate().expect("valid");
    assert_eq!(without_lines(ok(m.render())), m);
    let parsed = ok(with("Arg = x%2C y\nEnv = A, b"));
    assert_eq!(without_lines(ok(parsed.render())), without_lines(parsed));
}

#[test]
fn encodes_only_what_the_syntax_would_eat() {
    let cases = [
        ("plain text", "plain text"),
        (" edges ", "%20edges%20"),
        ("%,=", "%25%2C%3D"),
        ("a\nb\r\t", "a%0Ab%0D%09"),
        ("é;:#", "é;:#"),
        ("", ""),
    ];
    for (text, encoded) in cases {
        assert_eq!(encode(text), encoded);
    }
}
