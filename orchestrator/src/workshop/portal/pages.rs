//! The portal's HTML pages: MiniJinja templates from `templates/portal-*.html.j2`
//! (embedded), every value HTML-escaped; the one exception is a step's instructions,
//! HTML the service rendered from the instructor's Markdown (marked `|safe` where used).

use axum::http::StatusCode;
use axum::response::{Html, IntoResponse, Response};
use minijinja::{AutoEscape, Environment, UndefinedBehavior, Value};

/// The attendee's join form.
pub const JOIN: &str = "portal-join.html.j2";
/// The attendee's lab: steps, terminal, SSH, time left.
pub const LAB: &str = "portal-lab.html.j2";
/// Waiting for a lab: position and estimate.
pub const QUEUE: &str = "portal-queue.html.j2";
/// The instructor's login form.
pub const LOGIN: &str = "portal-login.html.j2";
/// The instructor's table of attendees.
pub const INSTRUCTOR: &str = "portal-instructor.html.j2";

/// Every page: its name and its text (the layout first: the others extend it).
const TEMPLATES: [(&str, &str); 6] = [
    ("portal-base.html.j2", include_str!("../../../../templates/portal-base.html.j2")),
    (JOIN, include_str!("../../../../templates/portal-join.html.j2")),
    (LAB, include_str!("../../../../templates/portal-lab.html.j2")),
    (QUEUE, include_str!("../../../../templates/portal-queue.html.j2")),
    (LOGIN, include_str!("../../../../templates/portal-login.html.j2")),
    (INSTRUCTOR, include_str!("../../../../templates/portal-instructor.html.j2")),
];

/// The pages, parsed once.
pub struct Pages {
    env: Environment<'static>,
}

impl Pages {
    /// Parses every page (they are part of the binary: a parse error is a bug a unit
    /// test catches, so it is not reported here but at render).
    pub fn new() -> Pages {
        let mut env = Environment::new();
        env.set_undefined_behavior(UndefinedBehavior::Strict);
        env.set_auto_escape_callback(|_| AutoEscape::Html);
        for (name, source) in TEMPLATES {
            if let Err(e) = env.add_template(name, source) {
                tracing::error!("portal template {name}: {e}");
            }
        }
        Pages { env }
    }

    /// The page `name` rendered with `context`, as a response (500 on a template bug).
    pub fn render(&self, name: &str, context: Value) -> Response {
        self.render_with(StatusCode::OK, name, context)
    }

    /// [`render`](Self::render) with another status.
    pub fn render_with(&self, status: StatusCode, name: &str, context: Value) -> Response {
        match self.env.get_template(name).and_then(|template| template.render(context)) {
            Ok(html) => (status, Html(html)).into_response(),
            Err(e) => {
                tracing::error!("rendering portal page {name}: {e:#}");
                (StatusCode::INTERNAL_SERVER_ERROR, "the page could not be rendered (a zerolab bug)").into_response()
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use minijinja::context;

    #[test]
    fn every_page_parses() {
        let pages = Pages::new();
        for (name, _) in TEMPLATES {
            assert!(pages.env.get_template(name).is_ok(), "{name}");
        }
    }

    #[test]
    fn every_page_renders_with_what_its_handler_passes() {
        let pages = Pages::new();
        let steps = vec![context! { title => "One", done => true }, context! { title => "Two", done => false }];
        let lab = context! {
            csrf => "c", link => "http://h/l/t", current => 1, step_html => "<p>Run <code>x</code></p>", steps,
            name => "Ada", lab => "wb-001", nodes => vec!["node-1"], state => "Ready", notice => "",
            ssh => "", ssh_error => "", time_left => "1h 05m", time_left_seconds => "3900",
        };
        let queue = context! { csrf => "c", link => "l", name => "Ada", position => 3, estimate => "2m 00s" };
        for (name, context) in [
            (LAB, lab),
            (QUEUE, queue),
            (LOGIN, context! { csrf => "c", error => () }),
            (INSTRUCTOR, context! { csrf => "c" }),
        ] {
            let html = pages.env.get_template(name).unwrap().render(context);
            assert!(html.is_ok(), "{name}: {html:?}");
        }
        let lab = pages.env.get_template(LAB).unwrap();
        let html = lab.render(context! {
            csrf => "c", link => "l", current => 0, step_html => "<p>Run <code>x</code></p>", steps => Vec::<Value>::new(),
            name => "Ada", lab => "wb-001", nodes => vec!["node-1"], state => "Ready", notice => "",
            ssh => "", ssh_error => "", time_left => "", time_left_seconds => "",
        });
        let html = html.unwrap();
        assert!(html.contains("<p>Run <code>x</code></p>"), "the step's HTML is the service's");
        assert!(html.contains("id=\"notice\" hidden") && !html.contains("data-seconds"));
    }

    #[test]
    fn values_are_escaped() {
        let pages = Pages::new();
        let html = pages.env.get_template(JOIN).unwrap();
        let html = html.render(context! { csrf => "t", error => "<script>x</script>", name => "\"><b>" }).unwrap();
        assert!(html.contains("&lt;script&gt;x&lt;&#x2f;script&gt;"), "{html}");
        assert!(!html.contains("<script>x"));
        assert!(!html.contains("\"><b>"));
    }
}
