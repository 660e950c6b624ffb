//! What each cookie, link and socket reaches, over plain HTTP and WebSocket: attendee A's
//! cookie or link opens A's lab and terminal and nothing of B's; an attendee cookie gets
//! nothing under /instructor; a forged token is the join form; a WebSocket from another
//! origin, or without a cookie, is refused; a POST without its CSRF token is refused;
//! bodies are limited; wrong access codes are limited per address; the security headers.

use std::time::{Duration, Instant};

use crate::harness::{prerequisites, Http, Term, WorkshopHarness};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_attendee_reaches_their_own_lab_and_nothing_else() {
    let Some(agent) = prerequisites("portal security") else { return };
    let started = Instant::now();
    let workshop = WorkshopHarness::up(agent, "wb1", "10.216.0.0/16", 18200, "23500-23509", 2).await;
    let http = Http::new(&workshop.url);
    let origin = workshop.url.clone();

    // The join form: headers, a form cookie, no attendee.
    let form = http.get("/", "").await;
    assert_eq!(form.status, 200);
    assert!(form.body.contains("Join the workshop"));
    let csp = form.headers["content-security-policy"].to_str().unwrap();
    assert!(csp.contains("script-src 'self'") && csp.contains("frame-ancestors 'none'"), "{csp}");
    assert_eq!(form.headers["x-frame-options"], "DENY");
    assert_eq!(form.headers["referrer-policy"], "no-referrer");

    // A join without its CSRF token, or with another browser's, is refused.
    let bound = form.cookie("zl_form").unwrap().to_owned();
    let forged = http
        .post("/join", &format!("zl_form={bound}"), &[("csrf", "00"), ("code", &workshop.code), ("name", "X")])
        .await;
    assert!(forged.cookie("zl_attendee").is_none() && forged.body.contains("expired"), "{}", forged.body);
    let other = http
        .post("/join", "zl_form=someoneelse", &[("csrf", &form.csrf()), ("code", &workshop.code), ("name", "X")])
        .await;
    assert!(other.cookie("zl_attendee").is_none());

    // Two attendees, two labs.
    let a = http.join(&workshop.code, "Ada").await.expect("Ada joins");
    let b = http.join(&workshop.code, "Bob").await.expect("Bob joins");
    let (lab_a, lab_b) = (http.lab(&a).await, http.lab(&b).await);
    assert_ne!(lab_a, lab_b);
    let page_a = http.get("/", &format!("zl_attendee={a}")).await;
    assert!(page_a.body.contains("Ada") && page_a.body.contains(&lab_a) && !page_a.body.contains(&lab_b));
    assert!(!page_a.body.contains(&b), "B's token in A's page");

    // The personal link: sets the cookie in a fresh browser; a forged one is the join form.
    let link = http.get(&format!("/l/{a}"), "").await;
    assert_eq!((link.status, link.cookie("zl_attendee")), (303, Some(a.as_str())));
    let forged_link = http.get("/l/0123456789abcdef0123456789abcdef", "").await;
    assert_eq!(forged_link.cookie("zl_attendee"), Some(""), "a forged link clears the cookie");
    let forged_cookie = http.get("/", "zl_attendee=0123456789abcdef0123456789abcdef").await;
    assert!(forged_cookie.body.contains("Join the workshop"));
    assert_eq!(http.get("/api/view", "zl_attendee=forged").await.status, 401);

    // A POST needs the CSRF token of its own attendee.
    let csrf_a = page_a.csrf();
    let page_b = http.get("/", &format!("zl_attendee={b}")).await;
    assert_eq!(http.post("/check", &format!("zl_attendee={a}"), &[("csrf", &page_b.csrf())]).await.status, 403);
    assert_eq!(http.post("/check", &format!("zl_attendee={a}"), &[("csrf", "")]).await.status, 403);
    assert_eq!(http.post("/check", &format!("zl_attendee={a}"), &[("csrf", &csrf_a)]).await.status, 200);

    // Bodies are limited.
    let big = "x".repeat(64 * 1024);
    assert_eq!(
        http.post("/ssh-key", &format!("zl_attendee={a}"), &[("csrf", &csrf_a), ("key", &big)]).await.status,
        413
    );

    // The instructor's side: an attendee cookie opens nothing, even under the instructor's name.
    for cookies in [format!("zl_attendee={a}"), format!("zl_instructor={a}")] {
        assert!(http.get("/instructor", &cookies).await.body.contains("Log in"));
        for path in ["/instructor/overview", "/instructor/events", "/instructor/attendees.csv"] {
            assert_eq!(http.get(path, &cookies).await.status, 401, "{path} with {cookies}");
        }
        let action =
            http.post("/instructor/action", &cookies, &[("csrf", &csrf_a), ("id", "0"), ("action", "reset")]).await;
        assert_eq!(action.status, 401);
    }
    assert!(http.instructor("not-the-password").await.is_none());
    let session = http.instructor(&workshop.password).await.expect("the instructor logs in");
    let instructor = format!("zl_instructor={session}");
    assert!(http.get("/", &format!("zl_attendee={session}")).await.body.contains("Join the workshop"));
    let overview = http.get("/instructor/overview", &instructor).await;
    assert!(overview.body.contains("Ada") && overview.body.contains("Bob"), "{}", overview.body);
    let csv = http.get("/instructor/attendees.csv", &instructor).await;
    assert!(csv.body.contains("Ada") && csv.body.contains("Bob"), "{}", csv.body);
    let no_csrf =
        http.post("/instructor/action", &instructor, &[("csrf", &csrf_a), ("id", "0"), ("action", "extend")]).await;
    assert_eq!(no_csrf.status, 403);

    // The terminal: only from this origin, only with a cookie, and to one's own node.
    assert_eq!(
        Term::open(workshop.address(), &format!("zl_attendee={a}"), "http://evil.example").await.err(),
        Some(403)
    );
    assert_eq!(Term::open(workshop.address(), "zl_attendee=forged", &origin).await.err(), Some(401));
    let mut addresses = Vec::new();
    for token in [&a, &b] {
        let mut term =
            Term::open(workshop.address(), &format!("zl_attendee={token}"), &origin).await.expect("terminal");
        // The answer's `end2` is not in the typed line the terminal echoes.
        term.send("echo addr=$(ip -4 -o addr show scope global | awk '{print $4}' | head -n1) end$((1+1))\r").await;
        assert!(term.until("end2", Duration::from_secs(20)).await, "no answer: {}", term.screen);
        // From `addr=` on: bash may start the line with its bracketed-paste switch.
        let line = term
            .screen
            .lines()
            .filter_map(|l| l.find("addr=").map(|at| l[at..].trim_end()))
            .find(|l| l.ends_with("end2"));
        addresses.push(line.expect("the answer line").to_owned());
    }
    assert_ne!(addresses[0], addresses[1], "two attendees' terminals reached one node");
    assert!(addresses.iter().all(|a| a.starts_with("addr=10.216.")), "{addresses:?}");

    // Wrong access codes are limited per address (last: it locks this address out).
    for _ in 0..10 {
        assert!(http.join("wrong-code", "Eve").await.is_none());
    }
    let form = http.get("/", "").await;
    let bound = form.cookie("zl_form").unwrap().to_owned();
    let limited = http
        .post(
            "/join",
            &format!("zl_form={bound}"),
            &[("csrf", &form.csrf()), ("code", &workshop.code), ("name", "Eve")],
        )
        .await;
    assert!(limited.body.contains("too many wrong access codes"), "{}", limited.body);
    eprintln!("portal security test: {:.1} s", started.elapsed().as_secs_f64());
}
