//! The templates zerolab renders: every one lives in the workspace's top-level
//! `templates/` directory and is embedded here with `include_str!`, so the binary is
//! self-contained and a template is read, and reviewed, as the file it produces.
//!
//! ```
//! use zerolab::install::{start_script, Claim, Owner, Paths};
//! // templates/start-agent.sh.j2, rendered for a node where nothing was uploaded.
//! let owner = Owner { lab: "demo".into(), dir: "/labs/demo".into(), host: "box".into() };
//! let script = start_script(&Paths::NODE, &Claim { owner: &owner, adopt: false }, false, None)?;
//! assert!(script.starts_with("set -e\nrestart=0\nowner=/var/lib/zerolab/owner\n"));
//! # Ok::<(), zerolab::templates::TemplateError>(())
//! ```
//!
//! Rendering is strict (MiniJinja): a variable the caller did not pass is an error, not
//! an empty string, and nothing is escaped (the outputs are shell and systemd files, not
//! HTML). Block tags on their own lines leave no blank lines behind (`trim_blocks`,
//! `lstrip_blocks`), and a template's final newline is kept.

use minijinja::syntax::SyntaxConfig;
use minijinja::{AutoEscape, Environment, UndefinedBehavior, Value};

/// The systemd unit of the node agent.
pub const AGENT_UNIT: &str = "zerolab-agent.service.j2";
/// The node-side script that starts the agent (systemd service or supervisor).
pub const START_AGENT: &str = "start-agent.sh.j2";
/// The node-side script that removes what zerolab installed.
pub const REMOVE_AGENT: &str = "remove-agent.sh.j2";

/// The Vagrantfile of a `vagrant` lab.
pub const VAGRANTFILE: &str = "Vagrantfile.j2";
/// The libvirt network of a `vagrant` lab.
pub const VAGRANT_NETWORK: &str = "vagrant-network.xml.j2";

/// Every template: its name (its file in `templates/`) and its text.
const TEMPLATES: [(&str, &str); 5] = [
    (AGENT_UNIT, include_str!("../../templates/zerolab-agent.service.j2")),
    (START_AGENT, include_str!("../../templates/start-agent.sh.j2")),
    (REMOVE_AGENT, include_str!("../../templates/remove-agent.sh.j2")),
    (VAGRANTFILE, include_str!("../../templates/Vagrantfile.j2")),
    (VAGRANT_NETWORK, include_str!("../../templates/vagrant-network.xml.j2")),
];

/// A template that could not be rendered. The templates are part of the binary, so this
/// is a zerolab bug, never a problem of the user's input.
#[derive(Debug, thiserror::Error)]
#[error("rendering template {name} failed (a zerolab bug: please report it)")]
pub struct TemplateError {
    /// The template.
    pub name: String,
    /// What MiniJinja said.
    #[source]
    pub source: minijinja::Error,
}

/// Renders the template `name` (one of the constants above) with `context`
/// (`minijinja::context! { key => value, ... }`).
pub fn render(name: &str, context: Value) -> Result<String, TemplateError> {
    let error = |source| TemplateError { name: name.to_owned(), source };
    let mut env = Environment::new();
    let syntax = SyntaxConfig::builder().trim_blocks(true).lstrip_blocks(true).keep_trailing_newline(true).build();
    env.set_syntax(syntax.map_err(error)?);
    env.set_undefined_behavior(UndefinedBehavior::Strict);
    env.set_auto_escape_callback(|_| AutoEscape::None);
    let Some(&(_, source)) = TEMPLATES.iter().find(|(n, _)| *n == name) else {
        let kind = minijinja::ErrorKind::TemplateNotFound;
        return Err(error(minijinja::Error::new(kind, "not one of zerolab's templates")));
    };
    env.add_template(name, source).map_err(error)?;
    env.get_template(name).and_then(|template| template.render(context)).map_err(error)
}

#[cfg(test)]
mod tests {
    use super::*;
    use minijinja::context;

    #[test]
    fn every_template_parses() {
        for (name, _) in TEMPLATES {
            // Undefined variables fail at render, not parse: an empty context shows that
            // each template names variables (and is found at all).
            let err = render(name, context! {}).unwrap_err();
            let source = err.source.to_string();
            assert!(source.contains("undefined"), "{name}: {source}");
        }
    }

    #[test]
    fn an_unknown_template_is_an_error_naming_it() {
        let err = render("nope.j2", context! {}).unwrap_err();
        assert_eq!(err.to_string(), "rendering template nope.j2 failed (a zerolab bug: please report it)");
    }
}
