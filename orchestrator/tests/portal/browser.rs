//! The portal in headless Chromium: an attendee joins, types `echo hello-N` in the
//! terminal and reads the answer from the page; the step advances after a check; the
//! instructor's page (a second browser) shows the attendee live (activity, step); the
//! instructor resets the attendee and the attendee's page shows the new lab and its
//! terminal answers again; with every lab taken, a newcomer gets the queue page.

use std::time::{Duration, Instant};

use fantoccini::{Client, Locator};

use crate::harness::{prerequisites, Driver, WorkshopHarness};

/// Polls `probe` (JavaScript returning a value) until `accept` takes its result.
async fn wait_for(
    browser: &Client,
    what: &str,
    probe: &str,
    accept: impl Fn(&serde_json::Value) -> bool,
) -> serde_json::Value {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let value = browser.execute(probe, vec![]).await.unwrap_or(serde_json::Value::Null);
        if accept(&value) {
            return value;
        }
        assert!(Instant::now() < deadline, "{what}: still {value} after 30 s");
        tokio::time::sleep(Duration::from_millis(150)).await;
    }
}

/// The terminal's screen text.
const SCREEN: &str = "return window.zlTerminal ? window.zlTerminal.text() : null;";

/// The instructor table's row of `name`, as its cells' text.
fn row_of(name: &str) -> String {
    format!(
        "const row = [...document.querySelectorAll('#attendees tbody tr')].find(r => r.dataset.name === {name:?}); \
         return row ? [...row.children].map(c => c.textContent) : null;"
    )
}

/// Types a command line into the terminal as a user would (xterm.js's hidden textarea
/// takes the keys), then Enter.
async fn type_in(browser: &Client, line: &str) {
    let input = browser.find(Locator::Css(".xterm-helper-textarea")).await.expect("xterm.js's input");
    input.send_keys(&format!("{line}{}", char::from(fantoccini::key::Key::Enter))).await.unwrap();
}

async fn join(browser: &Client, workshop: &WorkshopHarness, name: &str) {
    browser.goto(&workshop.url).await.unwrap();
    browser.find(Locator::Id("code")).await.unwrap().send_keys(&workshop.code).await.unwrap();
    browser.find(Locator::Id("name")).await.unwrap().send_keys(name).await.unwrap();
    browser.find(Locator::Id("join-button")).await.unwrap().click().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn attendee_and_instructor_in_a_browser() {
    let Some(agent) = prerequisites("portal in a browser") else { return };
    let Some(driver) = Driver::start(18290) else { return };
    let started = Instant::now();
    let workshop = WorkshopHarness::up(agent, "wb2", "10.217.0.0/16", 18201, "23510-23519", 2).await;
    let attendee = driver.browser().await;
    let instructor = driver.browser().await;

    // The attendee joins and gets a lab with a working terminal.
    join(&attendee, &workshop, "Ada").await;
    let lab = wait_for(
        &attendee,
        "the lab page",
        "const e = document.getElementById('lab-name'); return e && e.textContent;",
        |v| v.is_string(),
    )
    .await;
    wait_for(&attendee, "the terminal connected", "return window.zlTerminal && window.zlTerminal.connected();", |v| {
        v == true
    })
    .await;
    let n = std::process::id() % 100_000;
    type_in(&attendee, &format!("echo hello-$(({n}+1))")).await;
    let hello = format!("hello-{}", n + 1);
    wait_for(&attendee, "the echo on the page", SCREEN, |v| v.as_str().is_some_and(|s| s.contains(&hello))).await;

    // The instructor sees Ada live.
    instructor.goto(&format!("{}/instructor", workshop.url)).await.unwrap();
    instructor.find(Locator::Id("password")).await.unwrap().send_keys(&workshop.password).await.unwrap();
    instructor.find(Locator::Id("login-button")).await.unwrap().click().await.unwrap();
    let row = wait_for(&instructor, "Ada in the table", &row_of("Ada"), |v| v.is_array()).await;
    assert_eq!(row[1], lab, "the table's lab: {row}");
    assert!(row[4].as_str().is_some_and(|s| s.ends_with("ago")), "last activity: {row}");
    assert_eq!(row[3], "1/2", "Ada's step before the check: {row}");

    // The step advances after a check, on both pages.
    type_in(&attendee, &format!("touch {}", workshop.marker)).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    attendee.find(Locator::Id("check")).await.unwrap().click().await.unwrap();
    wait_for(&attendee, "step 1 done", "return document.querySelectorAll('#steps li.done').length;", |v| v == 1).await;
    wait_for(&instructor, "Ada on step 2", &row_of("Ada"), |v| v[3] == "2/2").await;

    // The instructor resets Ada: her page shows the new lab, and its terminal answers.
    let reset = "document.querySelector('tr[data-name=\"Ada\"] button[data-action=\"reset\"]').click(); return true;";
    instructor.execute(reset, vec![]).await.unwrap();
    let new_lab = wait_for(
        &attendee,
        "the new lab on Ada's page",
        "return document.getElementById('lab-name').textContent;",
        |v| v.is_string() && *v != lab,
    )
    .await;
    wait_for(&instructor, "the new lab in the table", &row_of("Ada"), |v| v[1] == new_lab).await;
    wait_for(&attendee, "the terminal reconnected", "return window.zlTerminal.connected();", |v| v == true).await;
    type_in(&attendee, &format!("echo again-$(({n}+2))")).await;
    let again = format!("again-{}", n + 2);
    wait_for(&attendee, "the new lab's terminal", SCREEN, |v| v.as_str().is_some_and(|s| s.contains(&again))).await;

    // Every lab taken: a newcomer waits in the queue, with a position.
    let second = driver.browser().await;
    let third = driver.browser().await;
    join(&second, &workshop, "Bob").await;
    join(&third, &workshop, "Cy").await;
    let position = wait_for(
        &third,
        "Cy in the queue",
        "const e = document.getElementById('position'); return e && e.textContent;",
        |v| v.as_str().is_some_and(|s| s.parse::<u32>().is_ok_and(|n| n >= 1)),
    )
    .await;
    eprintln!("Cy is number {position} in the queue");

    for browser in [attendee, instructor, second, third] {
        let _ = browser.close().await;
    }
    eprintln!("portal browser test: {:.1} s", started.elapsed().as_secs_f64());
}
