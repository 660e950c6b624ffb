//! What else a machine room's tests put on or beside the boot network: [`Dnsmasq`] (on the
//! host end, or as the plain DHCP server already on the network that proxy mode works
//! beside), [`Peer`] (a namespace host on the bridge, for requests from a given address
//! without booting a machine), [`Uplink`] (a namespace behind a second veth from the host
//! with a TCP listener that records who connected: the far side of `pxe.nat`), and
//! [`Capture`] (every frame crossing the bridge, e.g. a wake-on-LAN packet), and
//! [`WakeOnLan`] (a machine that powers on when its magic packet crosses the bridge, as a
//! NIC with wake-on-LAN armed does: QEMU has no such thing).
//!
//! Everything here lives in namespaces named after the room (`{room}u`, `{room}p{n}`) or
//! in the room's own, so [`crate::harness::teardown`] finds it even when a test panics.

use std::fs;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{IpAddr, Ipv4Addr, SocketAddr, TcpListener};
use std::os::fd::{AsFd, AsRawFd};
use std::path::PathBuf;
use std::process::{Child, Command, Output, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{mpsc, Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use nix::sched::{setns, CloneFlags};
use nix::sys::socket::{recv, setsockopt, socket, sockopt, AddressFamily, MsgFlags, SockFlag, SockProtocol, SockType};
use nix::sys::time::TimeVal;
use regex::Regex;

use crate::harness::{ip, last_lines, which, MachineRoom, RoomError};
use crate::machine::{qmp, Machine};

/// Lines something printed, each with when it arrived.
type Lines = Arc<Mutex<Vec<(Instant, String)>>>;
/// Frames captured, each with when it arrived.
type Frames = Arc<Mutex<Vec<(Instant, Vec<u8>)>>>;

/// A dnsmasq process; its log lines (stderr) timestamped as they arrive. Killed on drop.
pub struct Dnsmasq {
    child: Child,
    lines: Lines,
    reader: Option<JoinHandle<()>>,
}

impl Dnsmasq {
    /// Starts dnsmasq (in namespace `netns`, or on the host) with `args` plus what every
    /// instance here needs: foreground, log to stderr, no DNS, no config file, its own
    /// lease and pid files under `dir` (never the system's). Returns once it has started.
    pub fn start(
        netns: Option<&str>,
        dir: &std::path::Path,
        name: &str,
        args: &[String],
    ) -> Result<Dnsmasq, RoomError> {
        let program = which("dnsmasq").ok_or_else(|| RoomError::Spawn {
            program: "dnsmasq".into(),
            source: std::io::Error::new(std::io::ErrorKind::NotFound, "install dnsmasq-base"),
        })?;
        let mut command = match netns {
            Some(ns) => {
                let mut c = Command::new("ip");
                c.args(["netns", "exec", ns]).arg(&program);
                c
            }
            None => Command::new(&program),
        };
        command
            .args(["--keep-in-foreground", "--log-facility=-", "--port=0", "--conf-file=/dev/null"])
            .arg(format!("--dhcp-leasefile={}/{name}.leases", dir.display()))
            .arg(format!("--pid-file={}/{name}.pid", dir.display()))
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped());
        let mut child = command.spawn().map_err(|source| RoomError::Spawn { program: "dnsmasq".into(), source })?;
        let stderr = child.stderr.take().expect("stderr is piped");
        let (lines, reader) = collect_lines(stderr, dir.join(format!("{name}.log")));
        let mut dnsmasq = Dnsmasq { child, lines, reader: Some(reader) };
        dnsmasq.wait_for("started, version", Duration::from_secs(10))?;
        Ok(dnsmasq)
    }

    /// Waits for a log line matching `pattern`: when it arrived, and the line.
    pub fn wait_for(&mut self, pattern: &str, deadline: Duration) -> Result<(Instant, String), RoomError> {
        let re = Regex::new(pattern)
            .map_err(|e| RoomError::Spec { name: "dnsmasq".into(), reason: format!("pattern {pattern}: {e}") })?;
        let until = Instant::now() + deadline;
        loop {
            if let Some(hit) = self.lines.lock().unwrap().iter().find(|(_, l)| re.is_match(l)) {
                return Ok(hit.clone());
            }
            if !matches!(self.child.try_wait(), Ok(None)) {
                let tail = last_lines(&self.log(), 15);
                return Err(RoomError::Exited { what: "dnsmasq".into(), wanted: format!("/{pattern}/"), tail });
            }
            if Instant::now() >= until {
                let (what, secs) = (format!("dnsmasq: /{pattern}/"), deadline.as_secs());
                return Err(RoomError::Timeout { what, secs, tail: last_lines(&self.log(), 15) });
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Its log so far.
    pub fn log(&self) -> String {
        self.lines.lock().unwrap().iter().map(|(_, l)| format!("{l}\n")).collect()
    }
}

impl Drop for Dnsmasq {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        if let Some(reader) = self.reader.take() {
            let _ = reader.join();
        }
    }
}

/// Reads `from` line by line into timestamped [`Lines`], copying each to file `copy`.
fn collect_lines(from: impl Read + Send + 'static, copy: PathBuf) -> (Lines, JoinHandle<()>) {
    let lines: Lines = Arc::default();
    let sink = Arc::clone(&lines);
    let reader = std::thread::spawn(move || {
        let mut file = fs::File::create(copy).ok();
        for line in BufReader::new(from).lines().map_while(Result::ok) {
            if let Some(file) = file.as_mut() {
                let _ = writeln!(file, "{line}");
            }
            sink.lock().unwrap().push((Instant::now(), line));
        }
    });
    (lines, reader)
}

impl MachineRoom {
    /// dnsmasq on the host end of the room's veth (`--interface` and `--bind-interfaces`
    /// added), with `args`.
    pub fn host_dnsmasq(&self, name: &str, args: &[String]) -> Result<Dnsmasq, RoomError> {
        let mut all = vec![format!("--interface={}", self.interface()), "--bind-interfaces".to_owned()];
        all.extend(args.iter().cloned());
        Dnsmasq::start(None, self.dir(), name, &all)
    }

    /// A plain DHCP server already on the boot network (as a home router is): `address/prefix`
    /// on the bridge in the room's namespace, leases `from`..=`to`, no boot options. What
    /// `pxe.dhcp: proxy` works beside.
    pub fn dhcp_server(
        &self,
        address: Ipv4Addr,
        prefix: u8,
        from: Ipv4Addr,
        to: Ipv4Addr,
    ) -> Result<Dnsmasq, RoomError> {
        ip(&["-n", self.netns(), "addr", "add", &format!("{address}/{prefix}"), "dev", "br0"])?;
        let mask = Ipv4Addr::from(u32::MAX.checked_shl(32 - u32::from(prefix)).unwrap_or(0));
        let args = [
            "--interface=br0".to_owned(),
            "--bind-interfaces".to_owned(),
            "--no-ping".to_owned(),
            "--log-dhcp".to_owned(),
            format!("--dhcp-range={from},{to},{mask},1h"),
        ];
        Dnsmasq::start(Some(self.netns()), self.dir(), "plain-dhcp", &args)
    }

    /// A namespace host on the boot network: MAC `mac`, `address/prefix` on its `eth0`,
    /// a default route via `gateway` when given. Removed on drop.
    pub fn peer(&self, mac: &str, address: Ipv4Addr, prefix: u8, gateway: Option<Ipv4Addr>) -> Result<Peer, RoomError> {
        let port = self.port("p");
        let peer = Peer { netns: format!("{}{port}", self.netns()) };
        ip(&["netns", "add", &peer.netns])?;
        let (ns, pns) = (self.netns(), peer.netns.as_str());
        ip(&["-n", ns, "link", "add", &port, "type", "veth", "peer", "name", "eth0", "netns", pns])?;
        ip(&["-n", ns, "link", "set", &port, "master", "br0"])?;
        ip(&["-n", ns, "link", "set", &port, "up"])?;
        ip(&["-n", pns, "link", "set", "eth0", "address", mac])?;
        ip(&["-n", pns, "addr", "add", &format!("{address}/{prefix}"), "dev", "eth0"])?;
        ip(&["-n", pns, "link", "set", "eth0", "up"])?;
        ip(&["-n", pns, "link", "set", "lo", "up"])?;
        if let Some(gateway) = gateway {
            ip(&["-n", pns, "route", "add", "default", "via", &gateway.to_string()])?;
        }
        Ok(peer)
    }

    /// The uplink: namespace `{room}u` behind veth `{room}u` from the host, `host/30`
    /// on the host end (the interface for `pxe.nat`), `far/30` inside, and a TCP listener on
    /// `far:port` that answers `HTTP/1.0 200` and records each connection's source address.
    pub fn uplink(&self, host: Ipv4Addr, far: Ipv4Addr, port: u16) -> Result<Uplink, RoomError> {
        let name = format!("{}u", self.netns());
        ip(&["netns", "add", &name])?;
        let uplink =
            Uplink { netns: name.clone(), far, port, sources: Arc::default(), stop: Arc::default(), server: None };
        ip(&["link", "add", &name, "type", "veth", "peer", "name", "eth0", "netns", &name])?;
        ip(&["addr", "add", &format!("{host}/30"), "dev", &name])?;
        ip(&["link", "set", &name, "up"])?;
        ip(&["-n", &name, "addr", "add", &format!("{far}/30"), "dev", "eth0"])?;
        ip(&["-n", &name, "link", "set", "eth0", "up"])?;
        ip(&["-n", &name, "link", "set", "lo", "up"])?;
        uplink.serve()
    }

    /// Starts capturing every frame on the room's bridge.
    pub fn capture(&self) -> Result<Capture, RoomError> {
        Capture::start(self.netns(), "br0")
    }

    /// Arms wake-on-LAN for `machine` (best started paused, i.e. off): when a magic packet
    /// for its MAC crosses the bridge, it is powered on through QMP (`system_reset` and
    /// `cont` when it is not running). Disarmed on drop.
    pub fn wake_on_lan(&self, machine: &Machine) -> Result<WakeOnLan, RoomError> {
        let capture = self.capture()?;
        let (mac, socket) = (machine.spec.mac.clone(), machine.qmp_path());
        let woken: Arc<AtomicBool> = Arc::default();
        let stop: Arc<AtomicBool> = Arc::default();
        let (done, stopped) = (Arc::clone(&woken), Arc::clone(&stop));
        let watcher = std::thread::spawn(move || {
            while !stopped.load(Ordering::Relaxed) {
                if capture.wait_for(|f| is_magic_packet(f, &mac), Duration::from_millis(100)).is_some() {
                    let status = qmp(&socket, "query-status", None);
                    let running = status.is_ok_and(|s| s["status"] == "running");
                    let on =
                        running || (qmp(&socket, "system_reset", None).is_ok() && qmp(&socket, "cont", None).is_ok());
                    done.store(on, Ordering::Relaxed);
                    return;
                }
            }
        });
        Ok(WakeOnLan { woken, stop, watcher: Some(watcher) })
    }
}

/// A machine's armed wake-on-LAN ([`MachineRoom::wake_on_lan`]).
pub struct WakeOnLan {
    woken: Arc<AtomicBool>,
    stop: Arc<AtomicBool>,
    watcher: Option<JoinHandle<()>>,
}

impl WakeOnLan {
    /// Waits until the machine was woken (its magic packet seen and it powered on).
    pub fn wait(&self, deadline: Duration) -> bool {
        let until = Instant::now() + deadline;
        while Instant::now() < until {
            if self.woken.load(Ordering::Relaxed) {
                return true;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        false
    }
}

impl Drop for WakeOnLan {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(watcher) = self.watcher.take() {
            let _ = watcher.join();
        }
    }
}

/// A namespace host on the boot network; removed on drop (or with its room).
pub struct Peer {
    netns: String,
}

impl Peer {
    /// Its namespace.
    pub fn netns(&self) -> &str {
        &self.netns
    }

    /// Runs `program ARGS` in its namespace; what it printed.
    pub fn exec(&self, program: &str, args: &[&str]) -> std::io::Result<Output> {
        Command::new("ip").args(["netns", "exec", &self.netns, program]).args(args).output()
    }
}

impl Drop for Peer {
    fn drop(&mut self) {
        let _ = Command::new("ip").args(["netns", "del", &self.netns]).output();
    }
}

/// The uplink namespace and its recording listener; removed on drop.
pub struct Uplink {
    netns: String,
    far: Ipv4Addr,
    port: u16,
    sources: Arc<Mutex<Vec<IpAddr>>>,
    stop: Arc<AtomicBool>,
    server: Option<JoinHandle<()>>,
}

impl Uplink {
    /// Binds the listener inside the namespace (a thread that enters it: a socket stays in
    /// the namespace it was made in) and serves until drop.
    fn serve(mut self) -> Result<Uplink, RoomError> {
        let (netns, address) = (self.netns.clone(), SocketAddr::from((self.far, self.port)));
        let (sources, stop) = (Arc::clone(&self.sources), Arc::clone(&self.stop));
        let (bound, ready) = mpsc::channel();
        self.server = Some(std::thread::spawn(move || {
            let listener = in_netns(&netns, || TcpListener::bind(address));
            let listener = match listener.and_then(|l| l.set_nonblocking(true).map(|()| l)) {
                Ok(listener) => {
                    let _ = bound.send(Ok(()));
                    listener
                }
                Err(e) => return drop(bound.send(Err(e))),
            };
            while !stop.load(Ordering::Relaxed) {
                match listener.accept() {
                    Ok((mut stream, peer)) => {
                        sources.lock().unwrap().push(peer.ip());
                        // The request is read first (up to its blank line, or 2 s of nothing):
                        // closing with unread data would reset the connection.
                        let _ = stream.set_read_timeout(Some(Duration::from_secs(2)));
                        let mut request = Vec::new();
                        let mut buffer = [0u8; 1024];
                        while let Ok(n @ 1..) = stream.read(&mut buffer) {
                            request.extend_from_slice(&buffer[..n]);
                            if request.windows(4).any(|w| w == b"\r\n\r\n") {
                                break;
                            }
                        }
                        let _ = stream.write_all(b"HTTP/1.0 200 OK\r\nContent-Length: 7\r\n\r\nuplink\n");
                    }
                    Err(_) => std::thread::sleep(Duration::from_millis(20)),
                }
            }
        }));
        let path = PathBuf::from(format!("/run/netns/{}", self.netns));
        match ready.recv() {
            Ok(Ok(())) => Ok(self),
            Ok(Err(source)) => Err(RoomError::File { path, source }),
            Err(_) => Err(RoomError::File { path, source: std::io::Error::other("the listener thread ended") }),
        }
    }

    /// The host end's name: `pxe.nat`.
    pub fn interface(&self) -> &str {
        &self.netns
    }

    /// The listener's address.
    pub fn address(&self) -> SocketAddr {
        SocketAddr::from((self.far, self.port))
    }

    /// The source address of each connection so far.
    pub fn sources(&self) -> Vec<IpAddr> {
        self.sources.lock().unwrap().clone()
    }
}

impl Drop for Uplink {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(server) = self.server.take() {
            let _ = server.join();
        }
        let _ = Command::new("ip").args(["netns", "del", &self.netns]).output();
        let _ = Command::new("ip").args(["link", "del", &self.netns]).stderr(Stdio::null()).output();
    }
}

/// Runs `f` on this thread inside network namespace `netns`, then returns the thread to
/// the namespace it was in.
fn in_netns<T>(netns: &str, f: impl FnOnce() -> std::io::Result<T>) -> std::io::Result<T> {
    let home = fs::File::open("/proc/thread-self/ns/net")?;
    let target = fs::File::open(format!("/run/netns/{netns}"))?;
    setns(target.as_fd(), CloneFlags::CLONE_NEWNET)?;
    let result = f();
    setns(home.as_fd(), CloneFlags::CLONE_NEWNET)?;
    result
}

/// Frames seen on one interface of a namespace (an `AF_PACKET` socket, no tcpdump
/// needed), each with when it arrived; stops on drop.
pub struct Capture {
    frames: Frames,
    stop: Arc<AtomicBool>,
    reader: Option<JoinHandle<()>>,
}

impl Capture {
    /// Starts capturing on `interface` in `netns`; returns once the socket is bound.
    pub fn start(netns: &str, interface: &str) -> Result<Capture, RoomError> {
        let name = std::ffi::CString::new(interface).map_err(std::io::Error::other);
        let socket = in_netns(netns, || {
            let fd = socket(AddressFamily::Packet, SockType::Raw, SockFlag::SOCK_CLOEXEC, SockProtocol::EthAll)?;
            // SAFETY: `name` is a NUL-terminated string that outlives the call.
            let index = unsafe { libc::if_nametoindex(name?.as_ptr()) };
            if index == 0 {
                return Err(std::io::Error::last_os_error());
            }
            // SAFETY: sockaddr_ll is plain old data: all zeros is a valid value.
            let mut address: libc::sockaddr_ll = unsafe { std::mem::zeroed() };
            address.sll_family = libc::AF_PACKET as u16;
            address.sll_protocol = (libc::ETH_P_ALL as u16).to_be();
            address.sll_ifindex = index as i32;
            let size = std::mem::size_of::<libc::sockaddr_ll>() as libc::socklen_t;
            // SAFETY: `address` is a valid sockaddr_ll that lives across the call, `size` is its size.
            let bound = unsafe { libc::bind(fd.as_raw_fd(), (&raw const address).cast(), size) };
            if bound != 0 {
                return Err(std::io::Error::last_os_error());
            }
            setsockopt(&fd, sockopt::ReceiveTimeout, &TimeVal::new(0, 100_000))?;
            Ok(fd)
        })
        .map_err(|source| RoomError::File { path: format!("/run/netns/{netns} {interface}").into(), source })?;
        let frames: Frames = Arc::default();
        let stop: Arc<AtomicBool> = Arc::default();
        let (sink, stopped) = (Arc::clone(&frames), Arc::clone(&stop));
        let reader = std::thread::spawn(move || {
            let mut buffer = vec![0u8; 65536];
            while !stopped.load(Ordering::Relaxed) {
                if let Ok(n) = recv(socket.as_raw_fd(), &mut buffer, MsgFlags::empty()) {
                    sink.lock().unwrap().push((Instant::now(), buffer[..n].to_vec()));
                }
            }
        });
        Ok(Capture { frames, stop, reader: Some(reader) })
    }

    /// Waits for a frame for which `wanted` holds: when it arrived, and the frame.
    pub fn wait_for(&self, wanted: impl Fn(&[u8]) -> bool, deadline: Duration) -> Option<(Instant, Vec<u8>)> {
        let until = Instant::now() + deadline;
        while Instant::now() < until {
            if let Some(hit) = self.frames.lock().unwrap().iter().find(|(_, f)| wanted(f)) {
                return Some(hit.clone());
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        None
    }

    /// How many frames so far.
    pub fn count(&self) -> usize {
        self.frames.lock().unwrap().len()
    }
}

impl Drop for Capture {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(reader) = self.reader.take() {
            let _ = reader.join();
        }
    }
}

/// Whether `frame` carries a wake-on-LAN magic packet for `mac` (`aa:bb:..`): six 0xff
/// bytes then the MAC sixteen times, anywhere in the frame (UDP to any port, or raw
/// ethertype 0x0842).
pub fn is_magic_packet(frame: &[u8], mac: &str) -> bool {
    let Some(mac) = mac.split(':').map(|o| u8::from_str_radix(o, 16).ok()).collect::<Option<Vec<u8>>>() else {
        return false;
    };
    let mut magic = vec![0xff; 6];
    for _ in 0..16 {
        magic.extend_from_slice(&mac);
    }
    frame.windows(magic.len()).any(|w| w == magic.as_slice())
}
