//! What the guest sees of its channels and itself (`manifest.c`): order,
//! limits, types, sizes, memory layout, argv and environment; and how
//! regular files behave as outputs (truncation, append, random put).

use std::collections::BTreeMap;

use zerolab_sandbox::session::stack_size;

use crate::harness::{assert_kv, guest, kv, Lab, Limits, U};

/// `channel.I.*` as (name, type, gets, get_size, puts, put_size, size).
fn channels_seen(out: &BTreeMap<String, String>) -> Vec<(String, u8, u64, u64, u64, u64, u64)> {
    let count: usize = out["channels_count"].parse().unwrap();
    (0..count)
        .map(|i| {
            let n = |k: &str| out[&format!("channel.{i}.{k}")].parse::<u64>().unwrap();
            (
                out[&format!("channel.{i}.name")].clone(),
                n("type") as u8,
                n("gets"),
                n("get_size"),
                n("puts"),
                n("put_size"),
                n("size"),
            )
        })
        .collect()
}

#[test]
fn guest_sees_standard_channels_first_then_the_rest_sorted_by_alias() {
    let lab = Lab::new();
    let five = lab.write("five", "xyz12");
    let seven = lab.write("seven", "1234567");
    // Declared out of order, standard channels in the middle.
    let m = crate::harness::Manifest::new(guest("manifest"))
        .channel(&five, "/dev/zeta", 1, Limits::read_only(10, 20))
        .channel(lab.path("stdout"), "/dev/stdout", 0, Limits::WRITE_ONLY)
        .channel(&five, "/dev/B", 0, Limits::read_only(11, 21))
        .channel(lab.path("stderr"), "/dev/stderr", 0, Limits::write_only(100, 100_000))
        .channel(lab.path("w"), "/dev/alpha", 3, Limits::write_only(12, 22))
        .channel(&seven, "/dev/a", 3, Limits::read_only(13, 23))
        .channel("/dev/null", "/dev/stdin", 0, Limits::READ_ONLY)
        .channel(&seven, "/dev/seq2", 2, Limits::read_only(14, 24))
        .args(["manifest", "/dev/a", "/dev/", "/dev/std", "/dev/s", "/dev/none"]);
    lab.run(&m).expect_code(0);
    let out = kv(&lab.read_string("stdout"));
    let seen = channels_seen(&out);
    let row = |name: &str, ty, l: Limits, size| (name.to_string(), ty, l.gets, l.get_size, l.puts, l.put_size, size);
    assert_eq!(
        seen,
        vec![
            row("/dev/stdin", 0, Limits::READ_ONLY, 0),
            row("/dev/stdout", 0, Limits::WRITE_ONLY, 0),
            row("/dev/stderr", 0, Limits::write_only(100, 100_000), 0),
            // Byte order: upper case before lower case.
            row("/dev/B", 0, Limits::read_only(11, 21), 0),
            row("/dev/a", 3, Limits::read_only(13, 23), 7),
            row("/dev/alpha", 3, Limits::write_only(12, 22), 0),
            row("/dev/seq2", 2, Limits::read_only(14, 24), 0),
            row("/dev/zeta", 1, Limits::read_only(10, 20), 5),
        ]
    );
    // zvm_channel_next walks a prefix's channels in that same order.
    let next = |prefix: &str| out[&format!("next.{prefix}")].as_str();
    assert_eq!(next("/dev/a"), "4,5");
    assert_eq!(next("/dev/"), "0,1,2,3,4,5,6,7");
    assert_eq!(next("/dev/std"), "0,1,2");
    assert_eq!(next("/dev/s"), "0,1,2,6");
    assert_eq!(next("/dev/none"), "");
    assert_eq!(out["heap_rw"], "ok");
}

#[test]
fn heap_and_stack_sizes_follow_memory() {
    let lab = Lab::new();
    for memory in [32u64 << 20, 3 << 20, U] {
        let m = lab.manifest(guest("manifest")).memory(memory);
        lab.run(&m).expect_code(0);
        let out = kv(&lab.read_string("stdout"));
        let n = |k: &str| out[k].parse::<u64>().unwrap();
        let (heap, stack) = (n("heap_size"), n("stack_size"));
        assert_eq!(n("heap_ptr"), 1 << 32, "Memory {memory}");
        assert_eq!(stack, stack_size(memory), "Memory {memory}");
        assert_eq!(heap % 65536, 0, "heap is whole 64 KiB jail regions; Memory {memory}");
        // The image (a few pages, rounded to 64 KiB) is all that is missing.
        assert!(
            heap + stack <= memory && heap + stack + (1 << 20) > memory,
            "Memory {memory}: heap {heap} stack {stack}"
        );
        let probe = n("stack_probe");
        assert!(probe < 0xF000_0000 && probe >= 0xF000_0000 - stack, "stack_probe {probe:#x}, stack {stack}");
        assert_eq!(out["heap_rw"], "ok", "Memory {memory}");
    }
}

#[test]
fn arg_and_env_lines_become_argv_and_environment() {
    let lab = Lab::new();
    let m = lab
        .manifest(guest("manifest"))
        .args(["manifest", "a,b", "x=y", " padded ", "100%", "HOME", "EMPTY", "UNSET"])
        .env("HOME", "/h=x")
        .env("EMPTY", "");
    lab.run(&m).expect_code(0);
    let out = lab.read_string("stdout");
    let keep: String = out
        .lines()
        .filter(|l| !l.starts_with("channel.") && !l.starts_with("heap") && !l.starts_with("stack"))
        .map(|l| format!("{l}\n"))
        .collect();
    assert_kv(
        &keep,
        &[
            ("channels_count", &3),
            ("argc", &8),
            ("argv.0", &"manifest"),
            ("argv.1", &"a,b"),
            ("argv.2", &"x=y"),
            ("argv.3", &" padded "),
            ("argv.4", &"100%"),
            ("argv.5", &"HOME"),
            ("argv.6", &"EMPTY"),
            ("argv.7", &"UNSET"),
            ("env.0", &"HOME=/h=x"),
            ("env.1", &"EMPTY="),
            ("getenv.a,b", &"(unset)"),
            ("getenv.x", &"y=(unset)"),
            ("getenv. padded ", &"(unset)"),
            ("getenv.100%", &"(unset)"),
            ("getenv.HOME", &"/h=x"),
            ("getenv.EMPTY", &""),
            ("getenv.UNSET", &"(unset)"),
        ],
    );
}

#[test]
fn without_arg_lines_argv_is_the_program_file_name() {
    let lab = Lab::new();
    lab.run(&lab.manifest(guest("manifest"))).expect_code(0);
    let out = kv(&lab.read_string("stdout"));
    assert_eq!((out["argc"].as_str(), out["argv.0"].as_str()), ("1", "manifest"));
    assert!(!out.contains_key("env.0"), "environment should be empty: {out:?}");
}

#[test]
fn write_only_file_holds_exactly_what_the_guest_wrote() {
    let lab = Lab::new();
    // Direct: hello on an old, longer stdout file.
    lab.write("stdout", vec![b'#'; 1000]);
    lab.run(&lab.manifest(guest("hello"))).expect_code(0);
    assert_eq!(lab.read_string("stdout"), "Hello, World!\n");

    // Mediated: three 10-byte writes into an old 10000-byte file.
    let data = lab.write("data", vec![b'#'; 10_000]);
    let m = lab.manifest(guest("limits")).channel(&data, "/dev/data", 0, Limits::write_only(3, U)).args([
        "limits",
        "/dev/data",
        "write",
        "10",
    ]);
    lab.run(&m).expect_code(0);
    assert_eq!(lab.read("data"), vec![b'z'; 30]);
}

#[test]
fn write_only_path_that_does_not_exist_is_created() {
    let lab = Lab::new();
    let m = lab.manifest(guest("hello")).channel(lab.path("stdout.new"), "/dev/stdout", 0, Limits::WRITE_ONLY);
    lab.run(&m).expect_code(0);
    assert_eq!(lab.read_string("stdout.new"), "Hello, World!\n");
}

#[test]
fn read_write_type_1_channel_appends_after_existing_data() {
    let lab = Lab::new();
    // Direct: hello's stdout is a read-write type 1 channel on an old file.
    lab.write("stdout", "existing\n");
    let m = lab.manifest(guest("hello")).channel(lab.path("stdout"), "/dev/stdout", 1, Limits::UNLIMITED);
    lab.run(&m).expect_code(0);
    assert_eq!(lab.read_string("stdout"), "existing\nHello, World!\n");

    // Mediated: two 10-byte puts.
    let data = lab.write("data", "existing\n");
    let m = lab
        .manifest(guest("limits"))
        .channel(&data, "/dev/data", 1, Limits { puts: 2, ..Limits::UNLIMITED })
        .args(["limits", "/dev/data", "write", "10"]);
    lab.run(&m).expect_code(0);
    assert_eq!(lab.read_string("data"), format!("existing\n{}", "z".repeat(20)));
}

#[test]
fn read_write_type_3_channel_writes_at_the_offset_given() {
    let lab = Lab::new();
    let data = lab.write("data", vec![b'#'; 100]);
    let m = lab
        .manifest(guest("limits"))
        .channel(&data, "/dev/data", 3, Limits { puts: 2, ..Limits::UNLIMITED })
        .args(["limits", "/dev/data", "write", "10"]);
    lab.run(&m).expect_code(0);
    let mut expected = vec![b'z'; 20];
    expected.extend_from_slice(&[b'#'; 80]);
    assert_eq!(lab.read("data"), expected);
}
