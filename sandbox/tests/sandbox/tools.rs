//! Ordinary interpreters and tools from Debian's source, built with zvm-cc:
//! Lua 5.4 and busybox's text applets, reading files from a tar image and
//! channels (standard input, a host file attached by zvsh).

use std::fs;

use crate::harness::{busybox_tar, lua_tar, Lab};

const FRUIT: &str = "pear 3\napple 10\nfig 7\napple 2\nkiwi 5\n";

/// `lab/data.tar` holding `fruit.txt` and `notes/b.txt`, mounted at `/data`.
fn data_image(lab: &Lab) -> String {
    let mut b = tar::Builder::new(fs::File::create(lab.path("data.tar")).unwrap());
    for (name, body) in [("fruit.txt", FRUIT), ("notes/b.txt", "beta\n")] {
        let mut h = tar::Header::new_gnu();
        h.set_size(body.len() as u64);
        h.set_mode(0o644);
        b.append_data(&mut h, name, body.as_bytes()).unwrap();
    }
    b.into_inner().unwrap();
    "data.tar,/data".to_string()
}

/// Runs busybox APPLET ARGS (by its link's name, as a shell would) with
/// busybox.tar at `/` and the data image at `/data`.
fn applet(lab: &Lab, args: &[&str], stdin: &str) -> String {
    let out = lab
        .zvsh()
        .arg("--zvm-image")
        .arg(busybox_tar())
        .args(["--zvm-image", &data_image(lab)])
        .args(args)
        .stdin(stdin)
        .run();
    assert_eq!(out.code, 0, "{args:?}: {}\n{}", out.stdout(), out.stderr());
    assert_eq!(out.stderr(), "", "{args:?}");
    out.stdout()
}

#[test]
fn busybox_text_applets_work_on_image_files() {
    let lab = Lab::new();
    let sorted = "apple 10\napple 2\nfig 7\nkiwi 5\npear 3\n";
    let cases: &[(&[&str], &str)] = &[
        (&["cat", "/data/fruit.txt"], FRUIT),
        (&["wc", "-l", "/data/fruit.txt"], "5 /data/fruit.txt\n"),
        (&["sort", "/data/fruit.txt"], sorted),
        (&["sort", "-k2,2n", "/data/fruit.txt"], "apple 2\npear 3\nkiwi 5\nfig 7\napple 10\n"),
        (&["grep", "-c", "apple", "/data/fruit.txt"], "2\n"),
        (&["sed", "-n", "s/apple/APPLE/p", "/data/fruit.txt"], "APPLE 10\nAPPLE 2\n"),
        (&["awk", "{s[$1] += $2} END {print s[\"apple\"], NR}", "/data/fruit.txt"], "12 5\n"),
        (&["ls", "-R", "/data"], "/data:\nfruit.txt\nnotes\n\n/data/notes:\nb.txt\n"),
        (
            &["sha256sum", "/data/notes/b.txt"],
            "f2c82decdd7181cf98945929a62598db7e6b477e11f6e0eb0ae97020eff151ad  /data/notes/b.txt\n",
        ),
    ];
    for (args, want) in cases {
        assert_eq!(applet(&lab, args, ""), *want, "{args:?}");
    }
}

#[test]
fn busybox_applets_work_on_channels() {
    let lab = Lab::new();
    lab.write("local.txt", "b\nc\na\n");
    // Standard input is /dev/stdin; a host file named on the command line is
    // attached as a channel; the overlay takes writes.
    assert_eq!(applet(&lab, &["sort", "-r"], "x\nz\ny\n"), "z\ny\nx\n");
    assert_eq!(applet(&lab, &["sort", "local.txt"], ""), "a\nb\nc\n");
    assert_eq!(applet(&lab, &["busybox", "wc", "-w"], "one two three\n"), "3\n");
    assert_eq!(applet(&lab, &["tr", "a-z", "A-Z"], "shout\n"), "SHOUT\n");
    assert_eq!(applet(&lab, &["sed", "-e", "s/^/> /", "/dev/stdin"], "quoted\n"), "> quoted\n");
    assert_eq!(lab.read_string("local.txt"), "b\nc\na\n", "the attached file is read-only");
}

#[test]
fn lua_runs_a_script_on_image_files_and_channels() {
    let lab = Lab::new();
    let script = r#"
        local counts, order = {}, {}
        for line in io.lines("/data/fruit.txt") do
            local name, n = line:match("(%a+) (%d+)")
            if not counts[name] then order[#order + 1] = name end
            counts[name] = (counts[name] or 0) + tonumber(n)
        end
        table.sort(order)
        for _, name in ipairs(order) do io.write(name, "=", counts[name], "\n") end
        io.write("stdin=", io.read("a"):upper())
        local f = assert(io.open("/tmp/out", "w")); f:write("kept"); f:close()
        io.write("overlay=", io.open("/tmp/out"):read("a"), "\n")
        io.write("passwd=", tostring(io.open("/etc/passwd")), "\n")
        io.write("execute=", tostring(os.execute("ls")), "\n")
        io.write("time=", os.time(), "\n")
    "#;
    lab.write("count.lua", script);
    let out = lab
        .zvsh()
        .arg("--zvm-image")
        .arg(lua_tar())
        .args(["--zvm-image", &data_image(&lab), "lua", "count.lua"])
        .stdin("from a channel\n")
        .run()
        .expect_code(0);
    assert_eq!(
        out.stdout(),
        "apple=12\nfig=7\nkiwi=5\npear=3\nstdin=FROM A CHANNEL\noverlay=kept\npasswd=nil\nexecute=nil\n\
         time=1370044800\n"
    );
    assert_eq!(out.stderr(), "");
}
