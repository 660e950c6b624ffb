//! Channel specs: the guest's order of channels, access types and their codes, limits,
//! and a spec built in code.

use super::*;

#[test]
fn guest_order_puts_std_channels_first_then_sorts_by_alias() {
    let spec = |alias: &str| ChannelSpec::new(path("/x"), alias, AccessType::SeqGetSeqPut, READ);
    let aliases = ["/dev/out/b", "/dev/stderr", "/dev/in/a", "/dev/stdin", "/dev/stdout", "/dev/a", "/dev/B"];
    let m = Manifest { channels: aliases.iter().map(|a| spec(a)).collect(), ..built() };
    assert_eq!(m.guest_order(), [3, 4, 1, 6, 5, 2, 0]);
    assert_eq!(built().guest_order(), [0, 1, 2]);
}

#[test]
fn access_types_map_to_their_codes_and_sides() {
    let cases = [
        (AccessType::SeqGetSeqPut, 0, false, false),
        (AccessType::RandGetSeqPut, 1, true, false),
        (AccessType::SeqGetRandPut, 2, false, true),
        (AccessType::RandGetRandPut, 3, true, true),
    ];
    for (access, code, random_get, random_put) in cases {
        assert_eq!((access.code(), access.random_get(), access.random_put()), (code, random_get, random_put));
        assert_eq!(AccessType::from_code(code), Some(access));
    }
    assert_eq!(AccessType::from_code(4), None);
}

#[test]
fn limits_need_both_count_and_size_for_a_side() {
    let cases = [
        (Limits::UNLIMITED, true, true),
        (READ, true, false),
        (WRITE, false, true),
        (Limits { gets: 1, get_size: 0, puts: 0, put_size: 1 }, false, false),
    ];
    for (limits, readable, writable) in cases {
        assert_eq!((limits.readable(), limits.writable()), (readable, writable), "{limits:?}");
    }
    assert_eq!(Limits::UNLIMITED.gets, 4_294_967_296);
}

#[test]
fn channel_spec_new_has_no_etag_and_line_0() {
    let c = ChannelSpec::new(path("/a"), String::from("/dev/a"), AccessType::SeqGetSeqPut, READ);
    assert_eq!((c.etag, c.line, c.alias.as_str()), (false, 0, "/dev/a"));
}
