//! The command line: every subcommand, its arguments and its `--help` text (clap).

use std::path::PathBuf;

use clap::{Parser, Subcommand};
use zerolab::cluster::NodeSelector;
use zerolab::lab::default_root;

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
        /// `json`: one JSON document on stdout, the problems included (fields in docs/cluster.md
        /// and docs/job.md)
        #[arg(long, short = 'o', value_name = "FORMAT", default_value = "text")]
        output: OutputFormat,
    },
    /// Bring the lab up: make its nodes (netns; ssh nodes exist already), install and
    /// start the agent on each (a systemd service where systemd runs, else a supervised
    /// process), wait until it is healthy; one line per node as it finishes, then a summary;
    /// then run the cluster file's provisioning steps that changed, one line per step and node
    #[command(after_help = "Exit status: 0 every node ready, 1 a node or a provisioning step failed (one \
                            line each) or the cluster file is invalid, 2 usage error, unreadable file, or the lab could not be made.")]
    Up {
        /// The cluster file
        #[arg(value_name = "FILE")]
        file: PathBuf,
        /// Directory holding the labs (when not given: $ZEROLAB_HOME, else $XDG_STATE_HOME/zerolab/labs, else
        /// ~/.local/state/zerolab/labs)
        #[arg(long, value_name = "DIR", default_value_os_t = default_root())]
        lab_root: PathBuf,
        /// The agent binary to install [default: zerolab-agent beside zerolab]
        #[arg(long, value_name = "PATH")]
        agent: Option<PathBuf>,
        /// Run the provisioning steps again even where their content did not change: all
        /// of them, or only STEP
        #[arg(long, value_name = "STEP", num_args = 0..=1, default_missing_value = "")]
        reprovision: Option<String>,
    },
    /// Take the lab down (idempotent): netns removes its nodes; ssh stops and removes what
    /// zerolab installed on each node it logged into (the agent, its service,
    /// /var/lib/zerolab, /run/zerolab) and nothing else, leaving alone a node whose agent
    /// belongs to another lab. Always finishes: a node that cannot be cleaned (unreachable,
    /// key rejected) is listed on stderr with what to remove there by hand, and the lab
    /// directory goes all the same, but for the runs' collected results in LAB/jobs
    #[command(after_help = "Exit status: 0 down (nodes not cleaned are listed as warnings), 1 invalid cluster \
                            file, or --strict and a node not cleaned, 2 usage error, unreadable file, a run \
                            still running (without --force), or the lab could not be taken down.")]
    Down {
        /// The cluster file
        #[arg(value_name = "FILE")]
        file: PathBuf,
        /// Directory holding the labs (when not given: $ZEROLAB_HOME, else $XDG_STATE_HOME/zerolab/labs, else
        /// ~/.local/state/zerolab/labs)
        #[arg(long, value_name = "DIR", default_value_os_t = default_root())]
        lab_root: PathBuf,
        /// Go ahead while a run is running (its guests stop with the agents)
        #[arg(long)]
        force: bool,
        /// Also remove the runs' collected results and records (LAB/jobs)
        #[arg(long)]
        purge: bool,
        /// Exit 1 when a node could not be cleaned
        #[arg(long)]
        strict: bool,
    },
    /// Show every node: provider, address, state, agent version, cause of failure
    #[command(after_help = "Exit status: 0 every node ready, 1 a node not ready or invalid cluster file, \
                            2 usage error, unreadable file, or the lab could not be inspected.")]
    Status {
        /// The cluster file
        #[arg(value_name = "FILE")]
        file: PathBuf,
        /// Directory holding the labs (when not given: $ZEROLAB_HOME, else $XDG_STATE_HOME/zerolab/labs, else
        /// ~/.local/state/zerolab/labs)
        #[arg(long, value_name = "DIR", default_value_os_t = default_root())]
        lab_root: PathBuf,
        /// `json`: one JSON document on stdout (fields in docs/cluster.md)
        #[arg(long, short = 'o', value_name = "FORMAT", default_value = "text")]
        output: OutputFormat,
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
        /// Directory holding the labs (when not given: $ZEROLAB_HOME, else $XDG_STATE_HOME/zerolab/labs, else
        /// ~/.local/state/zerolab/labs)
        #[arg(long, value_name = "DIR", default_value_os_t = default_root())]
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
    /// code, guest exit code, accounting; then a line for each instance with a cause.
    /// Ctrl-C (or SIGTERM) stops every guest, collects their reports and records the run
    /// `interrupted`; a second one quits at once (the guests then stop by themselves
    /// within 10 s, when nobody renews their leases)
    #[command(after_help = RUN_AFTER_HELP)]
    Run {
        /// The cluster file
        #[arg(value_name = "FILE")]
        file: PathBuf,
        /// The job file (YAML `kind: Job`, or a ZeroCloud JSON job description)
        #[arg(value_name = "JOB")]
        job: PathBuf,
        /// Directory holding the labs (when not given: $ZEROLAB_HOME, else $XDG_STATE_HOME/zerolab/labs, else
        /// ~/.local/state/zerolab/labs)
        #[arg(long, value_name = "DIR", default_value_os_t = default_root())]
        lab_root: PathBuf,
        /// `json`: no progress, and one JSON document on stdout when the run ends, every
        /// instance in it (fields in docs/job.md)
        #[arg(long, short = 'o', value_name = "FORMAT", default_value = "text")]
        output: OutputFormat,
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
        #[arg(long, value_name = "DIR", default_value_os_t = default_root())]
        lab_root: PathBuf,
    },
    /// List the lab's job runs: id, job, when, state (running, detached, ok, failed,
    /// cancelled, interrupted), instances ended of all
    #[command(after_help = "Exit status: 0 listed, 1 invalid cluster file, 2 usage error or unreadable file.")]
    Jobs {
        /// The cluster file
        #[arg(value_name = "FILE")]
        file: PathBuf,
        /// Directory holding the labs (when not given: $ZEROLAB_HOME, else $XDG_STATE_HOME/zerolab/labs, else
        /// ~/.local/state/zerolab/labs)
        #[arg(long, value_name = "DIR", default_value_os_t = default_root())]
        lab_root: PathBuf,
        /// `json`: one JSON document on stdout (fields in docs/job.md)
        #[arg(long, short = 'o', value_name = "FORMAT", default_value = "text")]
        output: OutputFormat,
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
        /// Directory holding the labs (when not given: $ZEROLAB_HOME, else $XDG_STATE_HOME/zerolab/labs, else
        /// ~/.local/state/zerolab/labs)
        #[arg(long, value_name = "DIR", default_value_os_t = default_root())]
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
        /// Directory holding the labs (when not given: $ZEROLAB_HOME, else $XDG_STATE_HOME/zerolab/labs, else
        /// ~/.local/state/zerolab/labs)
        #[arg(long, value_name = "DIR", default_value_os_t = default_root())]
        lab_root: PathBuf,
    },
    /// List every lab under the lab root: name, provider, nodes ready of recorded, state (up,
    /// partly up, down, stale: its hosts are gone, say after a reboot), whether its keeper
    /// runs, the runs it keeps, and the cluster file it was brought up from
    #[command(after_help = "Exit status: 0 listed (also when there is no lab), 2 usage error or a lab root \
                            that cannot be read.")]
    Labs {
        /// Directory holding the labs (when not given: $ZEROLAB_HOME, else $XDG_STATE_HOME/zerolab/labs, else
        /// ~/.local/state/zerolab/labs)
        #[arg(long, value_name = "DIR", default_value_os_t = default_root())]
        lab_root: PathBuf,
    },
    /// Run guests in a node's sandbox
    #[command(subcommand)]
    Sandbox(SandboxCommand),
    /// Workshops: a lab for every attendee from a warm pool, a portal, an instructor's
    /// page (docs/workshop.md)
    #[command(subcommand)]
    Workshop(WorkshopCommand),
    /// The lab's connection keeper (started by other commands, not by hand): holds one
    /// SSH connection per node and serves LAB_DIR/keeper.sock until the lab is taken down
    /// or it has been idle for 10 minutes
    #[command(hide = true)]
    Keeper {
        /// The lab directory
        #[arg(value_name = "LAB_DIR")]
        lab_dir: PathBuf,
    },
    /// Print the script `up` runs as root on a node to start this lab's agent, owner file
    /// and systemd unit included, for a provisioner that installs the agent itself (as
    /// vagrant/Vagrantfile does) so that `up` later adopts it: the script prints `upload`
    /// when the node's binary differs from --agent; after copying it to
    /// /var/lib/zerolab/bin/zerolab-agent, run the script printed with --uploaded
    #[command(hide = true)]
    AgentScript {
        /// The cluster file
        #[arg(value_name = "FILE")]
        file: PathBuf,
        /// Directory holding the labs (as for `up`)
        #[arg(long, value_name = "DIR", default_value_os_t = default_root())]
        lab_root: PathBuf,
        /// The agent binary [default: zerolab-agent beside zerolab]
        #[arg(long, value_name = "PATH")]
        agent: Option<PathBuf>,
        /// The script to run after the upload: it (re)starts the agent without comparing sums
        #[arg(long)]
        uploaded: bool,
    },
    /// Switch machines on or off, power-cycle them, or show whether they are on, through
    /// each node's power control (pxe: its `power:` field); all nodes when none is named
    #[command(
        after_help = "Exit status: 0 done on every node, 1 a node failed (one line each; also when the provider has no power \
                            control) or invalid cluster file, 2 usage error, unreadable file or unknown node."
    )]
    Power {
        /// on, off, cycle or status
        #[arg(value_name = "ACTION")]
        action: PowerVerb,
        /// The cluster file
        #[arg(value_name = "FILE")]
        file: PathBuf,
        /// The nodes (all when none is given)
        #[arg(value_name = "NODE")]
        nodes: Vec<String>,
        /// Directory holding the labs
        #[arg(long, value_name = "DIR", default_value_os_t = default_root())]
        lab_root: PathBuf,
    },
    /// Shelve nodes (Nova's shelve): stop them running, keeping their addresses, host keys
    /// and files; without --offload their memory is kept too (netns: processes frozen;
    /// vagrant: suspended), with it their processes go (netns: killed; vagrant: halted;
    /// pxe: powered off). One line per node; all nodes when none is named
    #[command(after_help = "Exit status: 0 every node shelved (or already), 1 a node failed (one line each; also \
                            when the provider cannot shelve) or invalid cluster file, 2 usage error, unreadable \
                            file, unknown node, or a lab that is not up.")]
    Shelve {
        /// Free the nodes' memory: their processes stop for good, their disks stay
        #[arg(long)]
        offload: bool,
        /// The cluster file
        #[arg(value_name = "FILE")]
        file: PathBuf,
        /// The nodes (all when none is given)
        #[arg(value_name = "NODE")]
        nodes: Vec<String>,
        /// Directory holding the labs
        #[arg(long, value_name = "DIR", default_value_os_t = default_root())]
        lab_root: PathBuf,
    },
    /// Bring shelved nodes back: the same addresses, host keys and files, then the agent
    /// started and healthy as `up` leaves it. One line per node; all nodes when none is named
    #[command(after_help = "Exit status: 0 every node ready, 1 a node failed (one line each) or invalid cluster \
                            file, 2 usage error, unreadable file, unknown node, or a lab that is not up.")]
    Unshelve {
        /// The cluster file
        #[arg(value_name = "FILE")]
        file: PathBuf,
        /// The nodes (all when none is given)
        #[arg(value_name = "NODE")]
        nodes: Vec<String>,
        /// Directory holding the labs
        #[arg(long, value_name = "DIR", default_value_os_t = default_root())]
        lab_root: PathBuf,
        /// The agent binary [default: zerolab-agent beside zerolab]
        #[arg(long, value_name = "PATH")]
        agent: Option<PathBuf>,
    },
    /// Install a machine again (pxe, `boot: install`): its next network boot runs the
    /// installer once more, and it is power-cycled now; `up` then waits for it and
    /// provisions it again
    #[command(after_help = "Exit status: 0 switched back to installing and power-cycled, 1 invalid cluster \
                            file, 2 usage error, unreadable file, unknown node, a node that does not install, \
                            or a lab that is not up.")]
    Reinstall {
        /// The cluster file
        #[arg(value_name = "FILE")]
        file: PathBuf,
        /// The node
        #[arg(value_name = "NODE")]
        node: String,
        /// Directory holding the labs
        #[arg(long, value_name = "DIR", default_value_os_t = default_root())]
        lab_root: PathBuf,
    },
    /// Write every file zerolab renders for the lab, starting nothing: pxe: dnsmasq's
    /// configuration, each machine's iPXE script, pxelinux menu and preseed; vagrant: the
    /// Vagrantfile and its network. One path per line
    #[command(after_help = "Exit status: 0 written, 1 invalid cluster file, 2 usage error, unreadable file, a \
                            provider that renders nothing, or a file that cannot be written.")]
    Render {
        /// The cluster file
        #[arg(value_name = "FILE")]
        file: PathBuf,
        /// Where to write them [default: LAB/rendered in the lab directory]
        #[arg(long, value_name = "DIR")]
        out: Option<PathBuf>,
        /// Directory holding the labs
        #[arg(long, value_name = "DIR", default_value_os_t = default_root())]
        lab_root: PathBuf,
    },
    /// A pxe lab's boot server (started by `up`, not by hand): dnsmasq for DHCP and TFTP,
    /// HTTP for boot scripts, kernels, images and per-node metadata, as PLAN_JSON
    /// (LAB/pxe/plan.json) says, until SIGTERM
    #[command(hide = true)]
    PxeServe {
        /// The boot plan
        #[arg(value_name = "PLAN_JSON")]
        plan: PathBuf,
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
        /// Directory holding the labs (when not given: $ZEROLAB_HOME, else $XDG_STATE_HOME/zerolab/labs, else
        /// ~/.local/state/zerolab/labs)
        #[arg(long, value_name = "DIR", default_value_os_t = default_root())]
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
        /// Directory holding the labs (when not given: $ZEROLAB_HOME, else $XDG_STATE_HOME/zerolab/labs, else
        /// ~/.local/state/zerolab/labs)
        #[arg(long, value_name = "DIR", default_value_os_t = default_root())]
        lab_root: PathBuf,
        /// What to print
        #[arg(long, value_name = "FORMAT")]
        format: InventoryFormat,
    },
    /// Draw the lab from its cluster file: its network and nodes (address, labels, and
    /// each node's state when the lab is up); with a job file, also where the job's
    /// instances go and the channels between them. Nothing is contacted: the lab need
    /// not be up
    #[command(after_help = "Formats: mermaid (paste into Markdown on GitHub or GitLab, or mermaid.live), dot \
                            (Graphviz: zerolab graph lab.yaml --format dot | dot -Tsvg > lab.svg), html (one \
                            self-contained page with the drawing as inline SVG: no script, no network).\n\
                            Exit status: 0 drawn, 1 invalid cluster or job file, or a job that cannot be placed \
                            on the lab, 2 usage error or unreadable file.")]
    Graph {
        /// The cluster file
        #[arg(value_name = "FILE")]
        file: PathBuf,
        /// A job file to draw on the lab: its instances on their nodes, its channels
        #[arg(value_name = "JOB")]
        job: Option<PathBuf>,
        /// What to print
        #[arg(long, value_name = "FORMAT", default_value = "mermaid")]
        format: GraphFormat,
        /// Directory holding the labs
        #[arg(long, value_name = "DIR", default_value_os_t = default_root())]
        lab_root: PathBuf,
    },
    /// Print a shell completion script for zerolab's commands and options
    #[command(after_help = "Install: bash: zerolab completions bash > /etc/bash_completion.d/zerolab (or source it \
                            from ~/.bashrc); zsh: zerolab completions zsh > \"${fpath[1]}/_zerolab\"; fish: \
                            zerolab completions fish > ~/.config/fish/completions/zerolab.fish.\n\
                            Exit status: 0 printed, 2 usage error.")]
    Completions {
        /// The shell
        #[arg(value_name = "SHELL")]
        shell: clap_complete::Shell,
    },
}

/// `--output`: how a command prints its result.
/// What `zerolab power` does.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum PowerVerb {
    /// Switch on (a machine that is on is left alone)
    On,
    /// Switch off
    Off,
    /// Reset and run
    Cycle,
    /// Show whether it is on
    Status,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum OutputFormat {
    /// Lines and tables for people
    Text,
    /// One JSON document on stdout, for scripts
    Json,
}

/// `graph --format`.
#[derive(Debug, Clone, Copy, clap::ValueEnum)]
pub enum GraphFormat {
    /// A Mermaid flowchart
    Mermaid,
    /// A Graphviz digraph
    Dot,
    /// A self-contained HTML page with the drawing as inline SVG
    Html,
}

/// `run --help`'s epilogue: the exit status, and what the accounting columns count.
const RUN_AFTER_HELP: &str = "\
The ACCOUNTING column is ZeroVM's accounting line for the session, ten numbers:
  SYS USER                                 CPU seconds, system and user
  L-GETS L-GET-BYTES L-PUTS L-PUT-BYTES    local channels: read calls, bytes read, write calls, bytes written
  N-GETS N-GET-BYTES N-PUTS N-PUT-BYTES    network channels: likewise
Local: the guest's devices (stdin, stdout, files) and channels to an instance on the same node (pipes). \
Network: channels to an instance on another node (TCP between agents). Their bytes count as network, but \
their calls count as local (the kernel counts a guest's direct calls, not each channel's), so N-GETS and N-PUTS \
stay 0 unless a channel has limits (its calls are then made, and counted, by the sandbox).

Exit status: 0 every guest exited 0 (with --detach: every guest started), 1 a guest failed, was stopped or \
lost with its node, the run was cancelled, or the cluster or job file is invalid, 2 usage error, unreadable \
file, a lab that is not up, a node that is not ready, or a job that cannot be placed or started, \
130 interrupted (Ctrl-C, SIGTERM).";

/// `inventory --format`.
#[derive(Debug, Clone, Copy, clap::ValueEnum)]
pub enum InventoryFormat {
    /// Ansible INI inventory, a group per label (KEY_VALUE)
    Ansible,
    /// OpenSSH client config, a Host block per node
    SshConfig,
}

#[derive(Debug, Subcommand)]
pub enum WorkshopCommand {
    /// Make the warm pool (one line per lab as it is ready), start the portal (a detached
    /// `zerolab workshop serve`, restarted if dead: attendees keep their labs and links),
    /// print its URL, where the instructor's password is, and a summary
    #[command(
        after_help = "Exit status: 0 the pool is warm and the portal up, 1 invalid workshop file or                             capacity above what fits (see `workshop plan`), 2 usage error or the workshop                             could not be started."
    )]
    Up {
        /// The workshop file (kind: Workshop)
        #[arg(value_name = "FILE")]
        file: PathBuf,
        /// Directory holding the labs (workshops live in DIR/workshops/NAME)
        #[arg(long, value_name = "DIR", default_value_os_t = default_root())]
        lab_root: PathBuf,
        /// The agent binary to install [default: zerolab-agent beside zerolab]
        #[arg(long, value_name = "PATH")]
        agent: Option<PathBuf>,
        /// Go ahead with a capacity above what `workshop plan` says fits
        #[arg(long)]
        force: bool,
    },
    /// Show every attendee (lab, state, step, last activity, time left) and the pool
    #[command(after_help = "Exit status: 0 shown, 1 invalid workshop file, 2 usage error or not up.")]
    Status {
        /// The workshop file
        #[arg(value_name = "FILE")]
        file: PathBuf,
        /// Directory holding the labs
        #[arg(long, value_name = "DIR", default_value_os_t = default_root())]
        lab_root: PathBuf,
    },
    /// Take the workshop down (idempotent): the portal, every lab, the SSH forwarding
    /// rules and the workshop directory
    #[command(after_help = "Exit status: 0 down, 1 invalid workshop file or something left (listed), 2 usage error.")]
    Down {
        /// The workshop file
        #[arg(value_name = "FILE")]
        file: PathBuf,
        /// Directory holding the labs
        #[arg(long, value_name = "DIR", default_value_os_t = default_root())]
        lab_root: PathBuf,
    },
    /// Measure this machine and one idle lab (made once and cached) and say how many labs
    /// fit; exit 1 when capacity is above that
    #[command(after_help = "Exit status: 0 capacity fits, 1 it does not or the file is invalid, 2 usage error.")]
    Plan {
        /// The workshop file
        #[arg(value_name = "FILE")]
        file: PathBuf,
        /// Directory holding the labs
        #[arg(long, value_name = "DIR", default_value_os_t = default_root())]
        lab_root: PathBuf,
        /// The agent binary to install [default: zerolab-agent beside zerolab]
        #[arg(long, value_name = "PATH")]
        agent: Option<PathBuf>,
    },
    /// The workshop's portal process (started by `workshop up`, not by hand)
    #[command(hide = true)]
    Serve {
        /// The workshop directory
        #[arg(value_name = "DIR")]
        dir: PathBuf,
    },
}

#[derive(Debug, Subcommand)]
pub enum SandboxCommand {
    /// Upload a guest program (built with sandbox/guest/zvm-gcc) to NODE's agent, run it
    /// there and stream its stdout and stderr back; on failure the six-line ZeroVM report
    /// follows on stderr. The guest's stdin is this command's stdin, read to its end and
    /// uploaded before the guest starts (`echo hi | zerolab sandbox run FILE NODE cat`),
    /// or empty when stdin is a terminal
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
        /// Directory holding the labs (when not given: $ZEROLAB_HOME, else $XDG_STATE_HOME/zerolab/labs, else
        /// ~/.local/state/zerolab/labs)
        #[arg(long, value_name = "DIR", default_value_os_t = default_root())]
        lab_root: PathBuf,
    },
}
