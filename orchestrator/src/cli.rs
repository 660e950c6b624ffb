//! The command line: every subcommand, its arguments and its `--help` text (clap).

use std::path::PathBuf;

use clap::{Parser, Subcommand};
use zerolab::cluster::NodeSelector;
use zerolab::lab::DEFAULT_ROOT;

/// Labs of many machines that run untrusted code in millisecond sandboxes.
#[derive(Debug, Parser)]
#[command(
    name = "zerolab",
    version,
    disable_help_subcommand = true,
    after_help = "Exit status: 0 success, 1 the cluster file is invalid or a node is not ready, \
                  2 usage error, a file that cannot be read, or a lab that cannot be brought up or down.\n\
                  Environment: ZEROLAB_LOG sets what is logged to stderr (default `warn`; e.g. \
                  `zerolab=debug` for each step with its timing). ZEROLAB_LOCK_WAIT: how many seconds \
                  `up` and `down` wait for another command that is changing the same lab (default 600), \
                  then exit 2 naming it."
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Check a cluster file and print its nodes, or a job file (`kind: Job`, or a ZeroCloud
    /// JSON job description) and print its groups, instances and channels; or print every
    /// problem found as FILE:LINE:COL: what is wrong; what is expected
    #[command(after_help = "Exit status: 0 valid, 1 invalid, or a job that cannot be placed on the --cluster \
                            lab (each problem on its own line on stderr), 2 usage error or unreadable file.")]
    Validate {
        /// The cluster file or job file (YAML with apiVersion zerolab/v1, or ZeroCloud JSON)
        #[arg(value_name = "FILE")]
        file: PathBuf,
        /// With a job file: also place its instances on this cluster file's nodes
        #[arg(long, value_name = "CLUSTER")]
        cluster: Option<PathBuf>,
    },
    /// Bring the lab up: make its nodes (netns; ssh nodes exist already), install and
    /// start the agent on each (a systemd service where systemd runs, else a supervised
    /// process), wait until it is healthy; one line per node as it finishes, then a summary
    #[command(after_help = "Exit status: 0 every node ready, 1 a node failed (one line each) or the cluster \
                            file is invalid, 2 usage error, unreadable file, or the lab could not be made.")]
    Up {
        /// The cluster file
        #[arg(value_name = "FILE")]
        file: PathBuf,
        /// Directory holding the labs
        #[arg(long, value_name = "DIR", default_value = DEFAULT_ROOT)]
        lab_root: PathBuf,
        /// The agent binary to install [default: zerolab-agent beside zerolab]
        #[arg(long, value_name = "PATH")]
        agent: Option<PathBuf>,
    },
    /// Remove the lab and its directory (idempotent): netns removes its nodes; ssh stops
    /// and removes what zerolab installed on each node it reached (the agent, its service,
    /// /var/lib/zerolab, /run/zerolab) and nothing else, keeping the lab when a node fails
    #[command(after_help = "Exit status: 0 removed (or nothing to remove), 1 invalid cluster file, \
                            2 usage error, unreadable file, or the lab could not be removed (ssh: a node \
                            zerolab could not be removed from, named with the cause; run down again).")]
    Down {
        /// The cluster file
        #[arg(value_name = "FILE")]
        file: PathBuf,
        /// Directory holding the labs
        #[arg(long, value_name = "DIR", default_value = DEFAULT_ROOT)]
        lab_root: PathBuf,
    },
    /// Show every node: provider, address, state, agent version, cause of failure
    #[command(after_help = "Exit status: 0 every node ready, 1 a node not ready or invalid cluster file, \
                            2 usage error, unreadable file, or the lab could not be inspected.")]
    Status {
        /// The cluster file
        #[arg(value_name = "FILE")]
        file: PathBuf,
        /// Directory holding the labs
        #[arg(long, value_name = "DIR", default_value = DEFAULT_ROOT)]
        lab_root: PathBuf,
    },
    /// Run a shell command on every ready node (or those --nodes selects), all at once over
    /// the connections the lab's keeper holds; each output line is printed as `NODE: LINE`
    /// (stderr lines as `NODE (stderr): LINE`, on stderr) when the node finishes, then the
    /// exit codes
    #[command(after_help = "Exit status: 0 the command exited 0 on every selected node, 1 it exited non-zero \
                            or was killed on a node, or a node was not ready or could not be reached, or the \
                            cluster file is invalid, 2 usage error, unreadable file, unknown node or a lab \
                            that is not up.")]
    Exec {
        /// The cluster file
        #[arg(value_name = "FILE")]
        file: PathBuf,
        /// Directory holding the labs
        #[arg(long, value_name = "DIR", default_value = DEFAULT_ROOT)]
        lab_root: PathBuf,
        /// Only these nodes: names, globs (node-*) or label=value, comma-separated
        #[arg(long, value_name = "SELECTOR")]
        nodes: Option<NodeSelector>,
        /// The command, run by each node's shell (words joined with spaces, as ssh does)
        #[arg(value_name = "CMD", last = true, required = true)]
        command: Vec<String>,
    },
    /// Run a job on the lab: place its instances, upload programs and inputs once per
    /// node, start every guest through its node's agent, collect reports and outputs
    /// into LAB/jobs/ID/, and print one line per instance: node, exit state, return
    /// code, guest exit code, accounting. Ctrl-C (or SIGTERM) stops every guest, collects
    /// their reports and records the run `interrupted`; a second one quits at once (the
    /// guests then stop by themselves within 10 s, when nobody renews their leases)
    #[command(after_help = "Exit status: 0 every guest exited 0 (with --detach: every guest started), 1 a guest \
                            failed, was stopped or lost with its node, the run was cancelled, or the cluster or \
                            job file is invalid, 2 usage error, unreadable file, a lab that is not up, a node that \
                            is not ready, or a job that cannot be placed or started, 130 interrupted (Ctrl-C, \
                            SIGTERM).")]
    Run {
        /// The cluster file
        #[arg(value_name = "FILE")]
        file: PathBuf,
        /// The job file (YAML `kind: Job`, or a ZeroCloud JSON job description)
        #[arg(value_name = "JOB")]
        job: PathBuf,
        /// Directory holding the labs
        #[arg(long, value_name = "DIR", default_value = DEFAULT_ROOT)]
        lab_root: PathBuf,
        /// Start every guest, print the run's id and return, leaving the guests running
        /// (without leases: they run to their end or timeout); `zerolab wait` collects them
        #[arg(long)]
        detach: bool,
    },
    /// Follow a run left behind (started with --detach, or whose `zerolab run` was
    /// killed) to its end: collect every instance's report and outputs, finish its
    /// record and print its summary, as `run` does; a run already over is summarised
    #[command(after_help = "Exit status: as `run`'s: 0 every guest exited 0, 1 a guest failed or the run was \
                            cancelled, 2 usage error, unreadable file, unknown run, or a run another zerolab \
                            follows, 130 interrupted (Ctrl-C, SIGTERM, or guests stopped because their leases \
                            expired).")]
    Wait {
        /// The cluster file
        #[arg(value_name = "FILE")]
        file: PathBuf,
        /// The run: its id, or a job's name for its latest run
        #[arg(value_name = "RUN")]
        run: String,
        /// Directory holding the labs
        #[arg(long, value_name = "DIR", default_value = DEFAULT_ROOT)]
        lab_root: PathBuf,
    },
    /// List the lab's job runs: id, job, when, state (running, detached, ok, failed,
    /// cancelled, interrupted), instances ended of all
    #[command(after_help = "Exit status: 0 listed, 1 invalid cluster file, 2 usage error or unreadable file.")]
    Jobs {
        /// The cluster file
        #[arg(value_name = "FILE")]
        file: PathBuf,
        /// Directory holding the labs
        #[arg(long, value_name = "DIR", default_value = DEFAULT_ROOT)]
        lab_root: PathBuf,
    },
    /// Print a run's output: every instance's stdout as `INSTANCE: LINE`, or one
    /// instance's stdout as it is (its stderr on stderr); live from its node while it runs
    #[command(after_help = "Exit status: 0 printed, 1 invalid cluster file, 2 usage error, unreadable file, \
                            unknown run or instance, or a node that did not answer.")]
    Logs {
        /// The cluster file
        #[arg(value_name = "FILE")]
        file: PathBuf,
        /// The run: its id, or a job's name for its latest run
        #[arg(value_name = "JOB")]
        job: String,
        /// Only this instance
        #[arg(value_name = "INSTANCE")]
        instance: Option<String>,
        /// Follow the output as the instances write it, until they end
        #[arg(short, long)]
        follow: bool,
        /// Directory holding the labs
        #[arg(long, value_name = "DIR", default_value = DEFAULT_ROOT)]
        lab_root: PathBuf,
    },
    /// Stop every instance of a run that is still running; the run is recorded `cancelled`
    #[command(after_help = "Exit status: 0 stopped (or nothing left to stop), 1 a node did not answer or invalid \
                            cluster file, 2 usage error, unreadable file or unknown run.")]
    Cancel {
        /// The cluster file
        #[arg(value_name = "FILE")]
        file: PathBuf,
        /// The run: its id, or a job's name for its latest run
        #[arg(value_name = "JOB")]
        job: String,
        /// Directory holding the labs
        #[arg(long, value_name = "DIR", default_value = DEFAULT_ROOT)]
        lab_root: PathBuf,
    },
    /// Run guests in a node's sandbox
    #[command(subcommand)]
    Sandbox(SandboxCommand),
    /// The lab's connection keeper (started by other commands, not by hand): holds one
    /// SSH connection per node and serves LAB_DIR/keeper.sock until the lab is taken down
    /// or it has been idle for 10 minutes
    #[command(hide = true)]
    Keeper {
        /// The lab directory
        #[arg(value_name = "LAB_DIR")]
        lab_dir: PathBuf,
    },
    /// Log in to a ready node with the system's OpenSSH client, host key checked against
    /// zerolab's pin (the config is written to LAB/ssh_config); with -- CMD, run CMD there
    #[command(after_help = "Exit status: ssh's own: the remote command's, or 255 when ssh failed; 1 invalid \
                            cluster file; 2 usage error, unreadable file, unknown node, a lab that is not up, \
                            a node that is not ready, or no ssh client.")]
    Ssh {
        /// The cluster file
        #[arg(value_name = "FILE")]
        file: PathBuf,
        /// The node to log in to
        #[arg(value_name = "NODE")]
        node: String,
        /// Directory holding the labs
        #[arg(long, value_name = "DIR", default_value = DEFAULT_ROOT)]
        lab_root: PathBuf,
        /// A command to run instead of an interactive shell (words joined with spaces, as ssh does)
        #[arg(value_name = "CMD", last = true)]
        command: Vec<String>,
    },
    /// Print the lab's nodes for other tools: an Ansible INI inventory or an OpenSSH
    /// config (ssh -F FILE node-1), both checking host keys strictly against the keys
    /// zerolab pinned, which this writes to LAB/ssh_known_hosts in OpenSSH's format
    #[command(after_help = "Exit status: 0 printed, 1 invalid cluster file, 2 usage error, unreadable file, \
                            or a lab that is not up.")]
    Inventory {
        /// The cluster file
        #[arg(value_name = "FILE")]
        file: PathBuf,
        /// Directory holding the labs
        #[arg(long, value_name = "DIR", default_value = DEFAULT_ROOT)]
        lab_root: PathBuf,
        /// What to print
        #[arg(long, value_name = "FORMAT")]
        format: InventoryFormat,
    },
}

/// `inventory --format`.
#[derive(Debug, Clone, Copy, clap::ValueEnum)]
pub enum InventoryFormat {
    /// Ansible INI inventory, a group per label (KEY_VALUE)
    Ansible,
    /// OpenSSH client config, a Host block per node
    SshConfig,
}

#[derive(Debug, Subcommand)]
pub enum SandboxCommand {
    /// Upload a guest program (built with sandbox/guest/zvm-gcc) to NODE's agent, run it
    /// there and stream its stdout and stderr back; on failure the six-line ZeroVM report
    /// follows on stderr
    #[command(after_help = "Exit status: the guest's exit code, or ZeroVM's return code when the session \
                            failed (4 killed or timed out, 8 invalid program, ...; see zvsh); 1 invalid \
                            cluster file; 2 usage error, unreadable file or program, a node that is not ready \
                            or cannot be reached, or an agent error. Options go before PROGRAM: everything \
                            after it is the guest's.")]
    Run {
        /// The cluster file
        #[arg(value_name = "FILE")]
        file: PathBuf,
        /// The node to run on
        #[arg(value_name = "NODE")]
        node: String,
        /// The local guest program (a static zerolab guest)
        #[arg(value_name = "PROGRAM")]
        program: PathBuf,
        /// The guest's arguments
        #[arg(value_name = "ARGS", trailing_var_arg = true, allow_hyphen_values = true)]
        args: Vec<String>,
        /// Directory holding the labs
        #[arg(long, value_name = "DIR", default_value = DEFAULT_ROOT)]
        lab_root: PathBuf,
    },
}
