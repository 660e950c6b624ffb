//! Network values of a cluster file: the lab subnet, node addresses, MAC addresses and
//! host names, each parsed from text with a reason when it is not valid.
//!
//! Only the standard library is used: a lab subnet is an IPv4 CIDR block, which is a
//! few lines of arithmetic, not a reason for a dependency.

use std::fmt;
use std::net::{IpAddr, Ipv4Addr};
use std::str::FromStr;

/// An IPv4 lab subnet (`10.77.0.0/24`). Its first host address (`.1`) is the host
/// side of the lab (bridge or gateway); nodes get addresses from the second on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Subnet {
    network: Ipv4Addr,
    prefix: u8,
}

/// Why a subnet was refused.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SubnetError {
    /// Not `A.B.C.D/N`.
    Syntax,
    /// The prefix leaves room for no node (longer than /30) or is no prefix (over 32).
    Prefix(u8),
    /// Bits are set below the prefix: the subnet is written with a host address.
    HostBits(Subnet),
}

impl Subnet {
    /// The longest prefix that still has a host side and one node.
    pub const MAX_PREFIX: u8 = 30;

    /// A subnet from its parts, for constants: panics (at compile time in a `const`)
    /// when the prefix is over [`Subnet::MAX_PREFIX`] or host bits are set.
    pub const fn new(network: Ipv4Addr, prefix: u8) -> Subnet {
        assert!(prefix <= Subnet::MAX_PREFIX, "subnet prefix leaves no room for nodes");
        assert!(network.to_bits() & !mask(prefix) == 0, "subnet has host bits set");
        Subnet { network, prefix }
    }

    /// The subnet's network address.
    pub fn network(self) -> Ipv4Addr {
        self.network
    }

    /// The prefix length.
    pub fn prefix(self) -> u8 {
        self.prefix
    }

    fn mask(self) -> u32 {
        mask(self.prefix)
    }

    /// The broadcast address.
    pub fn broadcast(self) -> Ipv4Addr {
        Ipv4Addr::from(u32::from(self.network) | !self.mask())
    }

    /// The host side of the lab: the first address after the network address.
    pub fn host_address(self) -> Ipv4Addr {
        Ipv4Addr::from(u32::from(self.network) + 1)
    }

    /// Whether `address` lies in the subnet (network and broadcast addresses included).
    pub fn contains(self, address: Ipv4Addr) -> bool {
        u32::from(address) & self.mask() == u32::from(self.network)
    }

    /// How many nodes fit: every address but the network, broadcast and host side.
    pub fn node_capacity(self) -> u64 {
        (1u64 << (32 - u32::from(self.prefix))) - 3
    }

    /// The node addresses in allocation order: from `.2` to the last before broadcast.
    pub fn node_addresses(self) -> impl DoubleEndedIterator<Item = Ipv4Addr> {
        let first = u32::from(self.network) + 2;
        let last = u32::from(self.broadcast()) - 1;
        (first..=last).map(Ipv4Addr::from)
    }

    /// Whether the whole subnet is inside the private ranges of RFC 1918.
    pub fn is_private(self) -> bool {
        const PRIVATE: [(Ipv4Addr, u8); 3] =
            [(Ipv4Addr::new(10, 0, 0, 0), 8), (Ipv4Addr::new(172, 16, 0, 0), 12), (Ipv4Addr::new(192, 168, 0, 0), 16)];
        PRIVATE
            .iter()
            .any(|&(network, prefix)| self.prefix >= prefix && Subnet { network, prefix }.contains(self.network))
    }
}

/// The netmask of a prefix length (at most 32).
const fn mask(prefix: u8) -> u32 {
    if prefix == 0 {
        0
    } else {
        u32::MAX << (32 - prefix as u32)
    }
}

impl FromStr for Subnet {
    type Err = SubnetError;

    fn from_str(text: &str) -> Result<Subnet, SubnetError> {
        let (address, prefix) = text.split_once('/').ok_or(SubnetError::Syntax)?;
        let address: Ipv4Addr = address.parse().map_err(|_| SubnetError::Syntax)?;
        if prefix.is_empty() || prefix.len() > 2 || !prefix.bytes().all(|b| b.is_ascii_digit()) {
            return Err(SubnetError::Syntax);
        }
        let prefix: u8 = prefix.parse().map_err(|_| SubnetError::Syntax)?;
        if prefix > Subnet::MAX_PREFIX {
            return Err(SubnetError::Prefix(prefix));
        }
        let subnet = Subnet { network: address, prefix };
        let network = Ipv4Addr::from(u32::from(address) & subnet.mask());
        if network != address {
            return Err(SubnetError::HostBits(Subnet { network, prefix }));
        }
        Ok(subnet)
    }
}

impl fmt::Display for Subnet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.network, self.prefix)
    }
}

/// Where a node is reached: an IP address, or (ssh provider) a host name.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum NodeAddress {
    /// An IPv4 or IPv6 address.
    Ip(IpAddr),
    /// A DNS host name, resolved when the node is reached.
    Host(String),
}

impl NodeAddress {
    /// Parses an IP address, or else a valid host name (RFC 1123).
    pub fn parse(text: &str) -> Option<NodeAddress> {
        if let Ok(ip) = text.parse::<IpAddr>() {
            return Some(NodeAddress::Ip(ip));
        }
        // Something made only of digits and dots is a mistyped IPv4 address, not a name.
        if text.bytes().all(|b| b.is_ascii_digit() || b == b'.') {
            return None;
        }
        is_host_name(text).then(|| NodeAddress::Host(text.to_ascii_lowercase()))
    }
}

impl fmt::Display for NodeAddress {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            NodeAddress::Ip(ip) => ip.fmt(f),
            NodeAddress::Host(name) => f.write_str(name),
        }
    }
}

/// Whether `text` is a DNS host name: dot-separated labels of letters, digits and
/// inner hyphens, each at most 63 characters, 253 in all.
pub fn is_host_name(text: &str) -> bool {
    let text = text.strip_suffix('.').unwrap_or(text);
    !text.is_empty()
        && text.len() <= 253
        && text.split('.').all(|label| {
            !label.is_empty()
                && label.len() <= 63
                && !label.starts_with('-')
                && !label.ends_with('-')
                && label.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
        })
}

/// A unicast Ethernet MAC address, written `52:54:00:12:34:56`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct MacAddr(pub [u8; 6]);

/// Why a MAC address was refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MacError {
    /// Not six two-digit hex bytes separated by `:` or `-`.
    Syntax,
    /// The multicast bit is set: no interface has such an address.
    Multicast,
    /// All zeros.
    Zero,
}

impl FromStr for MacAddr {
    type Err = MacError;

    fn from_str(text: &str) -> Result<MacAddr, MacError> {
        let separator = if text.contains('-') { '-' } else { ':' };
        let mut bytes = [0u8; 6];
        let mut parts = text.split(separator);
        for byte in &mut bytes {
            let part = parts.next().ok_or(MacError::Syntax)?;
            if part.len() != 2 {
                return Err(MacError::Syntax);
            }
            *byte = u8::from_str_radix(part, 16).map_err(|_| MacError::Syntax)?;
        }
        if parts.next().is_some() {
            return Err(MacError::Syntax);
        }
        if bytes == [0; 6] {
            return Err(MacError::Zero);
        }
        if bytes[0] & 1 == 1 {
            return Err(MacError::Multicast);
        }
        Ok(MacAddr(bytes))
    }
}

impl fmt::Display for MacAddr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let [a, b, c, d, e, g] = self.0;
        write!(f, "{a:02x}:{b:02x}:{c:02x}:{d:02x}:{e:02x}:{g:02x}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_subnets_and_refuses_bad_ones() {
        let cases: &[(&str, Result<&str, SubnetError>)] = &[
            ("10.77.0.0/24", Ok("10.77.0.0/24")),
            ("192.168.8.0/30", Ok("192.168.8.0/30")),
            ("10.0.0.0/8", Ok("10.0.0.0/8")),
            ("10.77.0.0", Err(SubnetError::Syntax)),
            ("10.77.0/24", Err(SubnetError::Syntax)),
            ("10.77.0.0/+4", Err(SubnetError::Syntax)),
            ("10.77.0.0/", Err(SubnetError::Syntax)),
            ("10.77.0.0/31", Err(SubnetError::Prefix(31))),
            ("10.77.0.0/99", Err(SubnetError::Prefix(99))),
        ];
        for (text, want) in cases {
            let got = text.parse::<Subnet>().map(|s| s.to_string());
            assert_eq!(got.as_deref().map_err(Clone::clone), want.clone(), "{text}");
        }
        let host_bits = "10.77.0.9/24".parse::<Subnet>();
        assert_eq!(host_bits, Err(SubnetError::HostBits("10.77.0.0/24".parse().unwrap())));
    }

    #[test]
    fn knows_the_addresses_of_a_subnet() {
        let subnet: Subnet = "10.77.0.0/29".parse().unwrap();
        assert_eq!(subnet.host_address(), Ipv4Addr::new(10, 77, 0, 1));
        assert_eq!(subnet.broadcast(), Ipv4Addr::new(10, 77, 0, 7));
        assert_eq!(subnet.node_capacity(), 5);
        let nodes: Vec<String> = subnet.node_addresses().map(|a| a.to_string()).collect();
        assert_eq!(nodes, ["10.77.0.2", "10.77.0.3", "10.77.0.4", "10.77.0.5", "10.77.0.6"]);
        assert!(subnet.contains(Ipv4Addr::new(10, 77, 0, 7)));
        assert!(!subnet.contains(Ipv4Addr::new(10, 77, 0, 8)));
        assert_eq!("10.0.0.0/8".parse::<Subnet>().unwrap().node_capacity(), (1 << 24) - 3);
    }

    #[test]
    fn tells_private_subnets() {
        for (text, private) in [
            ("10.77.0.0/24", true),
            ("172.31.0.0/16", true),
            ("192.168.1.0/24", true),
            ("172.32.0.0/16", false),
            ("8.8.8.0/24", false),
            ("10.0.0.0/7", false),
        ] {
            let subnet = match text.parse::<Subnet>() {
                Ok(subnet) => subnet,
                Err(SubnetError::HostBits(subnet)) => subnet,
                Err(e) => panic!("{text}: {e:?}"),
            };
            assert_eq!(subnet.is_private(), private, "{text}");
        }
    }

    #[test]
    fn parses_node_addresses() {
        assert_eq!(NodeAddress::parse("10.0.0.5").unwrap().to_string(), "10.0.0.5");
        assert_eq!(NodeAddress::parse("fd00::5").unwrap().to_string(), "fd00::5");
        assert_eq!(NodeAddress::parse("Web-1.example.org").unwrap(), NodeAddress::Host("web-1.example.org".into()));
        for bad in ["10.0.0.256", "", "-web", "web_1", "a..b", "10.0.0"] {
            assert_eq!(NodeAddress::parse(bad), None, "{bad}");
        }
    }

    #[test]
    fn parses_mac_addresses() {
        assert_eq!("52:54:00:AB:cd:0f".parse::<MacAddr>().unwrap().to_string(), "52:54:00:ab:cd:0f");
        assert_eq!("52-54-00-12-34-56".parse::<MacAddr>().unwrap().to_string(), "52:54:00:12:34:56");
        assert_eq!("52:54:00:12:34".parse::<MacAddr>(), Err(MacError::Syntax));
        assert_eq!("52:54:00:12:34:56:78".parse::<MacAddr>(), Err(MacError::Syntax));
        assert_eq!("52:54:00:12:34:5g".parse::<MacAddr>(), Err(MacError::Syntax));
        assert_eq!("525:4:00:12:34:56".parse::<MacAddr>(), Err(MacError::Syntax));
        assert_eq!("01:00:5e:00:00:01".parse::<MacAddr>(), Err(MacError::Multicast));
        assert_eq!("00:00:00:00:00:00".parse::<MacAddr>(), Err(MacError::Zero));
    }
}
