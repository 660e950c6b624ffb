//! The files `zerolab up` renders for a `vagrant` lab, from the templates in
//! `templates/`: the lab's `Vagrantfile` (`Vagrantfile.j2`) and its libvirt network
//! (`vagrant-network.xml.j2`). Both are pure functions of the cluster and the lab's
//! names, so a second `up` renders the same bytes and can tell that nothing changed.

use std::net::Ipv4Addr;
use std::path::Path;

use minijinja::context;

use super::names::Names;
use super::Settings;
use crate::templates::{self, TemplateError};
use zerolab_config::cluster::{Cluster, Subnet};

/// How long Vagrant waits for a machine to boot and answer SSH, in seconds: generous,
/// since machines boot under software emulation where there is no KVM (about 35 s each
/// alone on two cores, several minutes when many boot at once).
pub const BOOT_TIMEOUT_SECS: u32 = 900;

/// The QEMU driver: `qemu` (software emulation) unless `ZEROLAB_VAGRANT_DRIVER=kvm`.
/// `/dev/kvm` being there does not say KVM works: on nested hosts QEMU aborts under it
/// (seen on the build machines: "failed to set MSR"), so it is asked for, not guessed.
pub fn driver() -> &'static str {
    match std::env::var("ZEROLAB_VAGRANT_DRIVER").as_deref() {
        Ok("kvm") => "kvm",
        _ => "qemu",
    }
}

/// The lab's Vagrantfile: one machine per node, consoles logged under `console_dir`,
/// `public_key` (the lab's, one line) authorized for the login user.
pub fn vagrantfile(
    cluster: &Cluster,
    names: &Names,
    console_dir: &Path,
    public_key: &str,
) -> Result<String, TemplateError> {
    let subnet = cluster.subnet().expect("a vagrant cluster has a lab subnet");
    let nodes: Vec<_> = cluster
        .nodes()
        .iter()
        .map(|node| {
            let settings = node.settings.get::<Settings>().expect("a vagrant node has vagrant settings");
            context! {
                name => node.name.clone(),
                user => node.user.clone(),
                box_name => settings.box_name.clone(),
                memory_mb => settings.memory_mb,
                cpus => settings.cpus,
                mac => names.mac(&node.name),
                console => console_dir.join(format!("{}.log", node.name)).to_string_lossy(),
            }
        })
        .collect();
    templates::render(
        templates::VAGRANTFILE,
        context! {
            lab => cluster.name(),
            prefix => names.prefix(),
            network => names.network(),
            subnet => subnet.to_string(),
            driver => driver(),
            boot_timeout => BOOT_TIMEOUT_SECS,
            public_key => public_key.trim(),
            nodes => nodes,
        },
    )
}

/// The lab's libvirt network: isolated, with a DHCP reservation per node and no range.
pub fn network(cluster: &Cluster, names: &Names) -> Result<String, TemplateError> {
    let subnet = cluster.subnet().expect("a vagrant cluster has a lab subnet");
    let hosts: Vec<_> = cluster
        .nodes()
        .iter()
        .map(
            |node| context! { name => node.name.clone(), mac => names.mac(&node.name), ip => node.address.to_string() },
        )
        .collect();
    templates::render(
        templates::VAGRANT_NETWORK,
        context! {
            network => names.network(),
            bridge => names.bridge(),
            gateway => subnet.host_address().to_string(),
            netmask => netmask(subnet).to_string(),
            hosts => hosts,
        },
    )
}

fn netmask(subnet: Subnet) -> Ipv4Addr {
    Ipv4Addr::from(u32::MAX.checked_shl(32 - u32::from(subnet.prefix())).unwrap_or(0))
}

#[cfg(test)]
mod tests {
    use super::*;

    const KEY: &str = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIKey zerolab lab vg";

    fn cluster() -> Cluster {
        let text = "apiVersion: zerolab/v1\nkind: Cluster\nname: vg\nprovider: vagrant\n\
                    network: {subnet: 10.78.5.0/24}\nnodes:\n  - {name: n1, memory_mb: 512}\n  - {name: n2, cpus: 2}\n";
        crate::cluster::from_str(text, "vg.yaml").unwrap()
    }

    #[test]
    fn the_vagrantfile_names_everything_with_the_labs_prefix() {
        let names = Names::new("vg");
        let text = vagrantfile(&cluster(), &names, Path::new("/labs/vg/vagrant/console"), KEY).unwrap();
        assert!(text.contains(r#"config.vm.define "n1" do |machine|"#), "{text}");
        assert!(text.contains(r#"libvirt.default_prefix = "zl-vg_""#));
        assert!(text.contains(r#"libvirt.management_network_name = "zl-vg_net""#));
        assert!(text.contains(r#"libvirt.management_network_address = "10.78.5.0/24""#));
        assert!(text.contains(&format!(r#"libvirt.management_network_mac = "{}""#, names.mac("n2"))));
        assert!(text.contains("libvirt.memory = 512\n") && text.contains("libvirt.cpus = 2\n"));
        assert!(text.contains(r#":path => "/labs/vg/vagrant/console/n1.log""#));
        assert!(text.contains(&format!("key='{KEY}'")), "the lab's key is authorized");
        assert_eq!(text, vagrantfile(&cluster(), &names, Path::new("/labs/vg/vagrant/console"), KEY).unwrap());
    }

    #[test]
    fn the_network_reserves_each_nodes_address_and_offers_no_range() {
        let names = Names::new("vg");
        let xml = network(&cluster(), &names).unwrap();
        assert!(xml.contains(r#"<ip address="10.78.5.1" netmask="255.255.255.0">"#), "{xml}");
        assert!(xml.contains(&format!(r#"<host mac="{}" name="n1" ip="10.78.5.2"/>"#, names.mac("n1"))), "{xml}");
        assert!(!xml.contains("<range") && !xml.contains("<forward"));
        assert_eq!(netmask(Subnet::new(Ipv4Addr::new(10, 0, 0, 0), 16)), Ipv4Addr::new(255, 255, 0, 0));
    }
}
