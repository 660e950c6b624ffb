//! The jail's isolation steps, in order: the one list that the "Layer 2" table of
//! `docs/security.md` follows row by row (`tests/sandbox/security_doc.rs` checks
//! each row's number and opening words against [`Step::ALL`]), that the jail's
//! code names its steps by, and that a failed launch reports.
//!
//! Step 1 ([`Step::SealedFiles`]) runs in the supervisor (`memfd`, `layout`,
//! `loader`); 2-8 in the cloned child before and at exec (`spawn`); 9 is the
//! kernel's, at that exec; 10-13 in the loader (`loader/loader.c`).

use std::fmt;

/// One step of the isolation sequence; its number is its row in `docs/security.md`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Step {
    /// The image, the layout and the loader are sealed memfds (the loader's
    /// execute-only for a root supervisor): what was validated is what is mapped.
    SealedFiles = 1,
    /// The child is cloned into a new pid namespace and new (non-root) or shared
    /// (root) mount, ipc and uts namespaces; a non-root child maps its own ids.
    Namespaces,
    /// Descriptors reduced to the channels, then the start-up socket, image,
    /// layout and loader (and `/proc/self/io` for the loader's baseline).
    Descriptors,
    /// Resource limits, set while still privileged enough to lower them.
    ResourceLimits,
    /// Root drops its groups, then gid, then uid to `nobody`.
    DropPrivileges,
    /// `no_new_privs`: exec can never gain privileges.
    NoNewPrivs,
    /// The parent-death signal, after the credential change that clears it.
    ParentDeathSignal,
    /// Exec of the loader: a fresh address space with none of the runtime's memory.
    ExecLoader,
    /// The kernel makes an exec of a program its process cannot read non-dumpable.
    NotDumpable,
    /// The loader unmaps the kernel's stack and the vDSO and maps the guest.
    MapGuest,
    /// `rdtsc`/`rdtscp` (and, where the CPU can, `cpuid`) fault; `SIGXFSZ` ignored.
    FaultingInstructions,
    /// The seccomp filter, with a listener for the supervisor.
    SeccompFilter,
    /// `zl_enter` sends the listener, unmaps the loader and enters the guest.
    EnterGuest,
}

impl Step {
    /// Every step, in order.
    pub const ALL: [Step; 13] = [
        Step::SealedFiles,
        Step::Namespaces,
        Step::Descriptors,
        Step::ResourceLimits,
        Step::DropPrivileges,
        Step::NoNewPrivs,
        Step::ParentDeathSignal,
        Step::ExecLoader,
        Step::NotDumpable,
        Step::MapGuest,
        Step::FaultingInstructions,
        Step::SeccompFilter,
        Step::EnterGuest,
    ];

    /// Its number: its row in `docs/security.md`'s table.
    pub fn number(self) -> u8 {
        self as u8
    }

    /// How its row in `docs/security.md`'s table begins.
    pub fn title(self) -> &'static str {
        match self {
            Step::SealedFiles => "sealed memfds",
            Step::Namespaces => "clone into a new pid namespace",
            Step::Descriptors => "descriptors reduced to the channels",
            Step::ResourceLimits => "resource limits",
            Step::DropPrivileges => "drop privileges",
            Step::NoNewPrivs => "`no_new_privs`",
            Step::ParentDeathSignal => "parent-death signal",
            Step::ExecLoader => "exec the loader",
            Step::NotDumpable => "non-dumpable from the first instruction",
            Step::MapGuest => "the loader unmaps the kernel's stack and the vDSO",
            Step::FaultingInstructions => "`rdtsc`/`rdtscp` made to fault",
            Step::SeccompFilter => "seccomp filter",
            Step::EnterGuest => "zl_enter sends the listener",
        }
    }
}

impl fmt::Display for Step {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} ({})", self.number(), self.title())
    }
}

#[cfg(test)]
mod tests {
    use super::Step;

    #[test]
    fn steps_are_numbered_in_order_from_one() {
        for (i, step) in Step::ALL.iter().enumerate() {
            assert_eq!(usize::from(step.number()), i + 1, "{step:?} is out of order");
        }
    }

    #[test]
    fn a_step_shows_its_number_and_title() {
        assert_eq!(Step::Descriptors.to_string(), "3 (descriptors reduced to the channels)");
    }
}
