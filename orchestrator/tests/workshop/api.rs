//! The service in-process: the warm pool, join → a ready lab at once, the same token →
//! the same lab, a full workshop → the queue with a position, then a lab; overview.

use std::time::Duration;

use zerolab::workshop::{JoinError, LabStateLabel};

use crate::harness::{prerequisites, until, Case, Harness};

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn join_claims_a_warm_lab_and_a_full_workshop_queues() {
    let Some(agent) = prerequisites("workshop api") else { return };
    let h = Harness::new(
        Case::Api,
        agent,
        "capacity: 2\npool: {warm: 1, reserve: 0}\n",
        "  - {title: One, text: '*hi*'}\n",
    );
    let ws = h.open(|_| {});
    let warm = until(Duration::from_secs(60), "the warm lab", async || {
        let pool = ws.overview().await.pool;
        (pool.free == 1).then_some(pool)
    })
    .await;
    assert_eq!((warm.warming, warm.claimed, warm.capacity), (0, 0, 2));

    assert!(matches!(ws.join("wrong", "Ann").await, Err(JoinError::BadCode)));
    assert!(matches!(ws.join("sesame", " ").await, Err(JoinError::NameInvalid)));
    let started = std::time::Instant::now();
    let ann = ws.join("sesame", "Ann").await.unwrap();
    let view = ws.view(&ann.token).await.unwrap();
    let lab = view.lab.expect("a lab at once from the warm pool");
    assert!(started.elapsed() < Duration::from_secs(1), "claim took {:?}", started.elapsed());
    assert_eq!(
        (lab.name.as_str(), lab.state, lab.nodes.as_slice()),
        ("wc1-001", LabStateLabel::Ready, ["node".to_owned()].as_slice())
    );
    assert_eq!(view.steps[0].html, "<p><em>hi</em></p>\n");
    assert!(view.time_left.unwrap() > Duration::from_secs(80 * 60));
    assert_eq!(ws.view(&ann.token).await.unwrap().lab.unwrap().name, "wc1-001", "same token, same lab");
    assert!(ws.view("0123456789abcdef0123456789abcdef").await.is_none());

    // The second lab is made for Bob (capacity 2); Cy waits in the queue.
    let bob = ws.join("sesame", "Bob").await.unwrap();
    let cy = ws.join("sesame", "Cy").await.unwrap();
    let bob_lab = until(Duration::from_secs(60), "Bob's lab", async || ws.view(&bob.token).await?.lab).await;
    assert_eq!(bob_lab.name, "wc1-002");
    let cy_view = ws.view(&cy.token).await.unwrap();
    assert!(cy_view.lab.is_none());
    let (position, estimate) = cy_view.queue.expect("Cy is queued");
    assert_eq!(position, 1);
    assert!(estimate > Duration::ZERO);
    let overview = ws.overview().await;
    assert_eq!(overview.rows.iter().map(|r| r.name.as_str()).collect::<Vec<_>>(), ["Ann", "Bob", "Cy"]);
    assert_eq!(overview.rows[2].queued, Some(1));
    assert!(ws.csv().await.starts_with("id,name,lab,state"));

    // Ann leaves: her lab goes, and a fresh one is made for Cy.
    ws.remove(ann.attendee).await.unwrap();
    assert!(ws.view(&ann.token).await.is_none());
    let cy_lab = until(Duration::from_secs(60), "Cy's lab", async || ws.view(&cy.token).await?.lab).await;
    assert_eq!(cy_lab.state, LabStateLabel::Ready);
}
