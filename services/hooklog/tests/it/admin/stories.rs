//! The stories, each on a stack of its own, and all of them at once before a rebuild.

use super::*;

/// `installation.created` from GitHub: the instance shows connected with the repositories the
/// installation grants, and the delivery processed, with what it caused and its raw payload.
async fn installation_created_story(stack: &Stack, installation: u64) {
    let delivery = format!("installation-created-{installation}");
    let body = installation_event("created", installation);
    let answer = stack.send("installation", &delivery, &body).await;
    assert_eq!(answer["duplicate"], false);
    let seq = answer["stream_seq"].as_u64().unwrap();

    let instance = stack
        .until(&format!("/v1/admin/instances/{installation}"), |i| {
            i["status"] == "connected" && i["last_delivery_id"] == delivery.as_str()
        })
        .await;
    assert_eq!(
        instance["instance_id"],
        format!("github-installation-{installation}")
    );
    assert_eq!(
        instance["account"],
        body["installation"]["account"]["login"]
    );
    assert_eq!(
        instance["repositories"],
        json!([{ "id": REPOSITORY, "full_name": REPO }])
    );
    assert_eq!(instance["health"], "healthy");
    assert_eq!(instance["targets"], 0);

    let listed = stack
        .until(
            &format!("/v1/admin/deliveries?event=installation&installation={installation}&min_position={seq}"),
            |page| items(page).iter().any(|d| d["outcome"] == "processed"),
        )
        .await;
    let [row] = items(&listed).as_slice() else {
        panic!("one delivery expected: {listed}");
    };
    assert_eq!(row["delivery_id"], delivery.as_str());
    assert_eq!(row["stream_sequence"], seq);
    assert_eq!(row["action"], "created");
    assert_eq!(row["installation_id"], installation);
    assert!(row["duplicate_of"].is_null());

    let detail = stack
        .until(&format!("/v1/admin/deliveries/{delivery}"), |d| {
            d["caused"]
                .as_array()
                .is_some_and(|c| c.iter().any(|e| e["event_type"] == "InstanceConnected"))
        })
        .await;
    assert_eq!(detail["outcome"], "processed");
    for caused in detail["caused"].as_array().unwrap() {
        assert_eq!(caused["aggregate_type"], "ConnectorInstance", "{detail}");
        assert_eq!(
            caused["aggregate_id"],
            format!("github-installation-{installation}")
        );
    }
    assert_eq!(detail["payload"], body, "the raw payload, as sent");
    assert_eq!(detail["headers"]["X-GitHub-Event"], "installation");
    assert_eq!(detail["headers"]["X-GitHub-Delivery"], delivery.as_str());
    let signature = detail["headers"]["X-Hub-Signature-256"].as_str().unwrap();
    assert!(signature.starts_with("sha256="), "{signature}");
    assert!(!detail.to_string().contains(SECRET));
}

/// A target tracked through the API, then pushes: one sync run for the tracked branch, however
/// often its delivery arrives; a push to an untracked branch is ignored.
async fn push_story(stack: &Stack, installation: u64) {
    connect(stack, installation).await;
    let (target, position) = track(stack, installation, "main").await;
    let tracked = stack
        .read(&format!(
            "/v1/admin/targets/{target}?min_position={position}"
        ))
        .await;
    assert_eq!(
        (
            &tracked["status"],
            &tracked["branch"],
            &tracked["auto_sync"]
        ),
        (&json!("idle"), &json!("main"), &json!(true)),
        "{tracked}"
    );

    let delivery = format!("push-{installation}");
    let head = sha(installation);
    let body = push(installation, "main", installation);
    let first = stack.send("push", &delivery, &body).await;
    assert_eq!(first["duplicate"], false);
    // GitHub sending it again at once: the stream keeps the first copy only.
    let again = stack.send("push", &delivery, &body).await;
    assert_eq!(again["duplicate"], true, "{again}");
    assert_eq!(again["stream_seq"], first["stream_seq"]);

    let runs_path = format!("/v1/admin/targets/{target}/syncs");
    let runs = stack
        .until(&runs_path, |page| !items(page).is_empty())
        .await;
    let [run] = items(&runs).as_slice() else {
        panic!("one sync run expected: {runs}");
    };
    assert_eq!(run["target_id"], target.as_str());
    assert_eq!(run["status"], "queued");
    assert_eq!(run["reason"], "push");
    assert_eq!(run["delivery_id"], delivery.as_str());
    assert_eq!(run["head_sha"], head.as_str());
    assert_eq!(run["branch"], "main");
    assert_eq!(run["repository"], REPO);
    assert_eq!(run["installation_id"], installation);
    assert_eq!(run["forced"], false);
    let sync_id = run["sync_id"].as_str().unwrap();
    assert_eq!(
        &stack.read(&format!("/v1/admin/syncs/{sync_id}")).await,
        run
    );
    let target_now = stack.read(&format!("/v1/admin/targets/{target}")).await;
    assert_eq!(target_now["status"], "queued", "{target_now}");
    assert_eq!(target_now["last_sync_id"], sync_id);
    assert_eq!(target_now["last_push_sha"], head.as_str());

    let delivered = stack
        .until(&format!("/v1/admin/deliveries/{delivery}"), |d| {
            d["outcome"] == "processed" && d["sync_runs"] == json!([sync_id])
        })
        .await;
    assert_eq!(delivered["redeliveries"], json!([]));
    assert!(delivered["caused"]
        .as_array()
        .unwrap()
        .iter()
        .any(|e| e["event_type"] == "SyncRequested" && e["aggregate_id"] == target.as_str()));

    let untracked = format!("push-untracked-{installation}");
    stack
        .send("push", &untracked, &push(installation, "feature", 7))
        .await;
    let ignored = stack
        .until(&format!("/v1/admin/deliveries/{untracked}"), |d| {
            d["outcome"] != "accepted"
        })
        .await;
    assert_eq!(ignored["outcome"], "ignored", "{ignored}");
    let reason = ignored["outcome_detail"].as_str().unwrap();
    assert!(reason.contains("no target tracks"), "{reason}");
    assert_eq!(ignored["caused"], json!([]));

    // GitHub redelivering it after the duplicate window: stored again, listed as a duplicate
    // of the first copy, and handled as already decided.
    let deadline = Instant::now() + WAIT;
    let late = loop {
        let answer = stack.send("push", &delivery, &body).await;
        if answer["duplicate"] == false {
            break answer;
        }
        assert!(Instant::now() < deadline, "still a duplicate: {answer}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    let late_seq = late["stream_seq"].as_u64().unwrap();
    assert!(late_seq > first["stream_seq"].as_u64().unwrap());
    let settled = stack.settled().await;
    let duplicates = stack
        .read(&format!(
            "/v1/admin/deliveries?outcome=duplicate&installation={installation}&min_position={}",
            settled.deliveries
        ))
        .await;
    let [copy] = items(&duplicates).as_slice() else {
        panic!("one duplicate expected: {duplicates}");
    };
    assert_eq!(copy["delivery_id"], delivery.as_str());
    assert_eq!(copy["stream_sequence"], late_seq);
    assert_eq!(copy["duplicate_of"], first["stream_seq"]);
    let delivered = stack
        .read(&format!("/v1/admin/deliveries/{delivery}"))
        .await;
    assert_eq!(delivered["outcome"], "processed");
    assert_eq!(delivered["redeliveries"], json!([late_seq]));
    let runs = stack
        .read(&format!("{runs_path}?min_position={}", settled.events))
        .await;
    assert_eq!(items(&runs).len(), 1, "no second run: {runs}");
}

/// `installation.deleted` from GitHub: the instance shows deleted and its targets removed (the
/// sync queued for one of them fails with the reason).
async fn installation_deleted_story(stack: &Stack, installation: u64) {
    let created = format!("installation-created-{installation}");
    stack
        .send(
            "installation",
            &created,
            &installation_event("created", installation),
        )
        .await;
    stack
        .until(&format!("/v1/admin/instances/{installation}"), |i| {
            i["status"] == "connected"
        })
        .await;
    let (main, _) = track(stack, installation, "main").await;
    let (dev, position) = track(stack, installation, "dev").await;
    let instance = stack
        .read(&format!(
            "/v1/admin/instances/{installation}?min_position={position}"
        ))
        .await;
    assert_eq!(instance["targets"], 2, "{instance}");
    stack
        .send(
            "push",
            &format!("push-before-delete-{installation}"),
            &push(installation, "main", 0xd0),
        )
        .await;
    let runs_path = format!("/v1/admin/targets/{main}/syncs");
    stack.until(&runs_path, |page| items(page).len() == 1).await;

    let deleted = format!("installation-deleted-{installation}");
    stack
        .send(
            "installation",
            &deleted,
            &installation_event("deleted", installation),
        )
        .await;
    let gone = stack
        .until(&format!("/v1/admin/instances/{installation}"), |i| {
            i["status"] == "deleted"
        })
        .await;
    assert_eq!(gone["health"], "gone");
    let targets_path = format!("/v1/admin/targets?instance={installation}");
    let targets = stack
        .until(&targets_path, |page| {
            items(page).len() == 2 && items(page).iter().all(|t| t["status"] == "removed")
        })
        .await;
    for target in items(&targets) {
        assert!([&main, &dev].contains(&&target["target_id"].as_str().unwrap().to_owned()));
        assert_eq!(target["removed_reason"], "installation_deleted", "{target}");
    }
    let instance = stack
        .read(&format!("/v1/admin/instances/{installation}"))
        .await;
    assert_eq!(instance["targets"], 0, "{instance}");
    let runs = stack.read(&runs_path).await;
    let [run] = items(&runs).as_slice() else {
        panic!("one sync run expected: {runs}");
    };
    assert_eq!(run["status"], "failed", "{run}");
    assert!(run["error"].as_str().unwrap().contains("removed"), "{run}");
    let detail = stack
        .until(&format!("/v1/admin/deliveries/{deleted}"), |d| {
            d["outcome"] == "processed"
        })
        .await;
    let caused: Vec<&str> = detail["caused"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["event_type"].as_str().unwrap())
        .collect();
    assert!(caused.contains(&"InstanceDeleted"), "{caused:?}");
    assert_eq!(
        caused.iter().filter(|e| **e == "TargetRemoved").count(),
        2,
        "{caused:?}"
    );
}

/// A push without the `repository` its event needs: a dead letter, and the delivery failed.
async fn dead_letter_story(stack: &Stack, installation: u64) {
    let delivery = format!("poison-{installation}");
    let mut body = push(installation, "main", 0xbad);
    body.as_object_mut().unwrap().remove("repository");
    let seq = stack.send("push", &delivery, &body).await["stream_seq"]
        .as_u64()
        .unwrap();

    let letters = stack
        .until("/v1/admin/dead-letters", |page| {
            items(page)
                .iter()
                .any(|d| d["delivery_id"] == delivery.as_str())
        })
        .await;
    let letter = items(&letters)
        .iter()
        .find(|d| d["delivery_id"] == delivery.as_str())
        .unwrap();
    assert_eq!(letter["event"], "push");
    assert_eq!(letter["stream_sequence"], seq);
    let reason = letter["reason"].as_str().unwrap();
    assert!(reason.contains("missing field `repository`"), "{reason}");

    let detail = stack
        .until(&format!("/v1/admin/deliveries/{delivery}"), |d| {
            d["outcome"] != "accepted"
        })
        .await;
    assert_eq!(detail["outcome"], "failed", "{detail}");
    assert_eq!(detail["outcome_detail"], reason);
    assert_eq!(detail["caused"], json!([]));
    let failed = stack
        .read(&format!(
            "/v1/admin/deliveries?outcome=failed&installation={installation}"
        ))
        .await;
    assert_eq!(items(&failed).len(), 1, "{failed}");
    assert_eq!(items(&failed)[0]["delivery_id"], delivery.as_str());
}

#[tokio::test]
async fn an_installation_created_on_github_shows_connected_with_its_repositories_and_a_processed_delivery(
) {
    let stack = Stack::start().await;
    installation_created_story(&stack, 957387).await;
}

#[tokio::test]
async fn a_push_to_a_tracked_branch_shows_one_queued_sync_run_however_often_it_is_delivered() {
    let stack = Stack::start().await;
    push_story(&stack, 4101).await;
}

#[tokio::test]
async fn a_deleted_installation_shows_deleted_with_its_targets_removed() {
    let stack = Stack::start().await;
    installation_deleted_story(&stack, 4201).await;
}

#[tokio::test]
async fn a_delivery_missing_required_fields_is_a_dead_letter_and_shows_failed() {
    let stack = Stack::start().await;
    dead_letter_story(&stack, 4301).await;
}

#[tokio::test]
async fn read_models_rebuilt_from_the_streams_equal_the_live_ones_and_answer_the_same() {
    let stack = Stack::start().await;
    tokio::join!(
        installation_created_story(&stack, 5101),
        push_story(&stack, 5201),
        installation_deleted_story(&stack, 5301),
        dead_letter_story(&stack, 5401),
    );
    let settled = stack.settled().await;
    let reads = [
        format!(
            "/v1/admin/instances?limit=500&min_position={}",
            settled.events
        ),
        format!(
            "/v1/admin/targets?limit=500&min_position={}",
            settled.events
        ),
        format!("/v1/admin/syncs?limit=500&min_position={}", settled.events),
        format!(
            "/v1/admin/dead-letters?limit=500&min_position={}",
            settled.events
        ),
        format!(
            "/v1/admin/deliveries?limit=500&min_position={}",
            settled.deliveries
        ),
        "/v1/admin/deliveries/push-5201".to_owned(),
        "/v1/admin/instances/5301".to_owned(),
    ];
    let mut before = vec![];
    for path in &reads {
        before.push(stack.read(path).await);
    }

    let (status, reports, stderr) = stack.rebuild(&["--verify"]);
    assert!(status.success(), "{status}: {reports:?}\n{stderr}");
    // Off a terminal, progress is plain lines on stderr, one per projection at least.
    for projection in ["connector", "deliveries"] {
        assert!(
            stderr.contains(&format!("rebuilding {projection}: ")),
            "no progress line for {projection}:\n{stderr}"
        );
    }
    let projections: Vec<&str> = reports
        .iter()
        .map(|r| r["projection"].as_str().unwrap())
        .collect();
    assert_eq!(projections, ["connector", "deliveries"], "{reports:?}");
    for report in &reports {
        let tables = report["tables"].as_array().unwrap();
        assert!(!tables.is_empty(), "{report}");
        for table in tables {
            assert_eq!(table["equal"], true, "{table}");
        }
        assert!(report["position"].as_u64().unwrap() > 0, "{report}");
    }
    let rows = |name: &str| {
        reports
            .iter()
            .flat_map(|r| r["tables"].as_array().unwrap())
            .find(|t| t["table"] == name)
            .map(|t| t["live"]["rows"].as_i64().unwrap())
    };
    assert_eq!(rows("instances"), Some(3), "the dead letter made none");
    assert_eq!(rows("sync_runs"), Some(2));

    let (status, reports, stderr) = stack.rebuild(&[]);
    assert!(status.success(), "{status}: {reports:?}\n{stderr}");
    assert_eq!(reports.len(), 2, "{reports:?}");
    for (path, before) in reads.iter().zip(&before) {
        assert_eq!(&stack.read(path).await, before, "GET {path} changed");
    }
}
