//! A PXE client's two DHCP exchanges, enough to test proxyDHCP without firmware: a
//! DISCOVER as a PXE ROM sends it (vendor class `PXEClient`, client architecture, user
//! class `iPXE` when asked), collecting every answer (the address from the plain server,
//! the boot menu from the proxy); then the boot server request to the proxy's port 4011
//! naming the menu's first item, whose answer carries the boot file. Run from a thread
//! that entered the client's network namespace (`setns`, per thread), so its sockets
//! live there.

use std::net::{Ipv4Addr, SocketAddr, UdpSocket};
use std::time::{Duration, Instant};

use nix::sched::{setns, CloneFlags};
use nix::sys::socket::{setsockopt, sockopt};

/// One answer.
#[derive(Debug, Clone)]
pub struct Reply {
    pub from: SocketAddr,
    pub yiaddr: Ipv4Addr,
    pub siaddr: Ipv4Addr,
    pub file: String,
    /// The PXE menu's first boot item type (option 43, sub-option 9), if any.
    pub menu_item: Option<u16>,
}

/// Runs `f` in a thread inside the network namespace `ns`.
pub fn in_netns<T: Send>(ns: &str, f: impl FnOnce() -> T + Send) -> T {
    std::thread::scope(|scope| {
        scope
            .spawn(|| {
                let file = std::fs::File::open(format!("/run/netns/{ns}")).expect("the namespace exists");
                setns(file, CloneFlags::CLONE_NEWNET).expect("setns");
                f()
            })
            .join()
            .expect("the probe thread did not panic")
    })
}

fn packet(kind: u8, mac: [u8; 6], ciaddr: Ipv4Addr, ipxe: bool, boot_item: Option<u16>) -> Vec<u8> {
    let mut p = vec![0u8; 240];
    p[0] = 1; // BOOTREQUEST
    p[1] = 1; // Ethernet
    p[2] = 6;
    p[4..8].copy_from_slice(&[0x50, 0x33, mac[4], mac[5]]); // xid
    p[10] = 0x80; // answer by broadcast
    p[12..16].copy_from_slice(&ciaddr.octets());
    p[28..34].copy_from_slice(&mac);
    p[236..240].copy_from_slice(&[99, 130, 83, 99]);
    let mut option = |code: u8, value: &[u8]| {
        p.push(code);
        p.push(value.len() as u8);
        p.extend_from_slice(value);
    };
    option(53, &[kind]);
    option(60, b"PXEClient:Arch:00000:UNDI:002001");
    option(93, &[0, 0]);
    option(94, &[1, 2, 1]);
    // The machine's UUID: its own (dnsmasq takes two PXE clients with one UUID for one).
    let mut uuid = [0u8; 17];
    uuid[1..7].copy_from_slice(&mac);
    option(97, &uuid);
    if ipxe {
        option(77, b"iPXE");
    }
    if let Some(item) = boot_item {
        let [hi, lo] = item.to_be_bytes();
        option(43, &[71, 4, hi, lo, 0, 0, 255]);
    }
    p.push(255);
    p
}

fn parse(bytes: &[u8], from: SocketAddr) -> Option<Reply> {
    if bytes.len() < 240 || bytes[0] != 2 || bytes[236..240] != [99, 130, 83, 99] {
        return None;
    }
    let ip = |at: usize| Ipv4Addr::new(bytes[at], bytes[at + 1], bytes[at + 2], bytes[at + 3]);
    let file = String::from_utf8_lossy(&bytes[108..236]).trim_end_matches('\0').to_owned();
    let mut menu_item = None;
    let mut at = 240;
    while at + 1 < bytes.len() && bytes[at] != 255 {
        let (code, len) = (bytes[at], bytes[at + 1] as usize);
        let value = bytes.get(at + 2..at + 2 + len)?;
        if code == 43 {
            let mut sub = 0;
            while sub + 1 < value.len() && value[sub] != 255 {
                let (code, len) = (value[sub], value[sub + 1] as usize);
                if code == 9 && len >= 2 {
                    menu_item = Some(u16::from_be_bytes([value[sub + 2], value[sub + 3]]));
                }
                sub += 2 + len;
            }
        }
        at += 2 + len;
    }
    Some(Reply { from, yiaddr: ip(16), siaddr: ip(20), file, menu_item })
}

fn socket() -> UdpSocket {
    // A DHCP client the test ran before in this namespace may still be exiting (seen on
    // a loaded machine): its port comes free within moments.
    let started = Instant::now();
    let socket = loop {
        match UdpSocket::bind("0.0.0.0:68") {
            Err(e) if e.kind() == std::io::ErrorKind::AddrInUse && started.elapsed() < Duration::from_secs(10) => {
                std::thread::sleep(Duration::from_millis(100));
            }
            bound => break bound.expect("bind the DHCP client port"),
        }
    };
    socket.set_broadcast(true).unwrap();
    setsockopt(&socket, sockopt::BindToDevice, &std::ffi::OsString::from("eth0")).unwrap();
    socket.set_read_timeout(Some(Duration::from_millis(200))).unwrap();
    socket
}

fn collect(socket: &UdpSocket, within: Duration) -> Vec<Reply> {
    let mut replies = Vec::new();
    let started = Instant::now();
    let mut buf = [0u8; 1500];
    while started.elapsed() < within {
        if let Ok((n, from)) = socket.recv_from(&mut buf) {
            replies.extend(parse(&buf[..n], from));
        }
    }
    replies
}

/// A PXE DISCOVER from `mac` (in the current thread's namespace): every answer within 2 s.
pub fn discover(mac: [u8; 6], ipxe: bool) -> Vec<Reply> {
    let socket = socket();
    socket.send_to(&packet(1, mac, Ipv4Addr::UNSPECIFIED, ipxe, None), "255.255.255.255:67").unwrap();
    collect(&socket, Duration::from_secs(2))
}

/// The boot server request to `server`:4011 from `mac` at `ciaddr` for `item`.
pub fn boot_request(server: Ipv4Addr, mac: [u8; 6], ciaddr: Ipv4Addr, ipxe: bool, item: u16) -> Vec<Reply> {
    let socket = socket();
    socket.send_to(&packet(3, mac, ciaddr, ipxe, Some(item)), (server, 4011)).unwrap();
    collect(&socket, Duration::from_secs(2))
}
