//! The `pxe` provider's parts against real programs, as one test binary. `power` drives
//! machines through every power control (a real QEMU over QMP, OpenIPMI's simulated BMC
//! in front of a QEMU, a wake-on-LAN packet captured in a network namespace, shell
//! commands); `bmc` is the simulated BMC, for any test that wants a machine behind IPMI.
//!
//! Needs `qemu-system-x86_64`, `ipmi_sim` (openipmi) and `ipmitool`; the wake-on-LAN test
//! needs root. Without them each test says on stderr why it is skipped.
//!
//! All of it: `cargo test --release -p zerolab --test pxe`; one module:
//! `cargo test --release -p zerolab --test pxe -- power::`.

mod bmc;
mod power;
