//! Power through wake-on-LAN: the magic packet (6 bytes 0xff, then the target MAC 16
//! times) as a UDP broadcast to port 9, sent out of one named interface.
//!
//! The socket is bound to the interface (`SO_BINDTODEVICE`, which needs root): a
//! limited broadcast (255.255.255.255) otherwise leaves by whichever interface the
//! routing table picks, not necessarily the boot network's. A machine that is off
//! answers nothing, so wake-on-LAN can neither switch off nor tell the state (the
//! callers in [`super`] say so).

use std::ffi::OsString;
use std::io;
use std::net::{Ipv4Addr, SocketAddrV4, UdpSocket};

use nix::sys::socket::{setsockopt, sockopt};
use zerolab_config::cluster::net::MacAddr;

/// The UDP port the packet goes to ("discard", the usual one).
pub const PORT: u16 = 9;

/// The magic packet that wakes `mac`.
pub fn magic_packet(mac: MacAddr) -> [u8; 102] {
    let mut packet = [0xff; 102];
    for copy in packet[6..].chunks_exact_mut(6) {
        copy.copy_from_slice(&mac.0);
    }
    packet
}

/// Broadcasts the magic packet for `mac` out of `interface`.
pub(super) async fn wake(mac: MacAddr, interface: &str) -> io::Result<()> {
    let socket = UdpSocket::bind(SocketAddrV4::new(Ipv4Addr::UNSPECIFIED, 0))?;
    socket.set_broadcast(true)?;
    setsockopt(&socket, sockopt::BindToDevice, &OsString::from(interface)).map_err(io::Error::from)?;
    socket.set_nonblocking(true)?;
    let socket = tokio::net::UdpSocket::from_std(socket)?;
    let sent = socket.send_to(&magic_packet(mac), SocketAddrV4::new(Ipv4Addr::BROADCAST, PORT)).await?;
    if sent != 102 {
        return Err(io::Error::other(format!("only {sent} of the packet's 102 bytes were sent")));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn magic_packet_is_six_ff_then_sixteen_macs() {
        let mac = MacAddr([0x52, 0x54, 0x00, 0x12, 0x34, 0x03]);
        let packet = magic_packet(mac);
        assert_eq!(packet[..6], [0xff; 6]);
        for copy in packet[6..].chunks(6) {
            assert_eq!(copy, mac.0);
        }
        assert_eq!(packet.len(), 6 + 16 * 6);
    }
}
