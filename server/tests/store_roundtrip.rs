//! The store returns every double exactly as it was logged, whatever path reads it.

use mlflow_server::store::{Batch, NewMetric, Store, StoreOptions};

const TRICKY: &[f64] = &[
    0.1 + 0.2,
    0.95,
    1.0 / 3.0,
    -2.5e-5,
    5e-324,
    1e-300,
    123_456_789.123_456_79,
    f64::MAX,
    f64::MIN,
    f64::MIN_POSITIVE,
    -0.0,
    9_007_199_254_740_993.0,
];

#[tokio::test]
async fn metric_values_round_trip_exactly() {
    let dir = std::env::temp_dir().join(format!("rs-roundtrip-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let store = Store::open(&StoreOptions {
        uri: format!("sqlite:///{}/m.db", dir.display()),
        default_artifact_root: "mlflow-artifacts:/".into(),
        max_connections: 2,
        pool_size: None,
    })
    .await
    .unwrap();
    let run = store.create_run(0, "u", 1, "r", &[]).await.unwrap();
    let id = run.info.run_id;
    let metrics = TRICKY
        .iter()
        .enumerate()
        .map(|(i, v)| NewMetric {
            key: format!("k{i}"),
            value: *v,
            timestamp: 1,
            step: 0,
            model_id: None,
            dataset_name: None,
            dataset_digest: None,
        })
        .collect();
    store
        .log_batch(
            &id,
            Batch {
                metrics,
                ..Default::default()
            },
        )
        .await
        .unwrap();
    let latest = store.get_run(&id).await.unwrap().data.metrics;
    for (i, v) in TRICKY.iter().enumerate() {
        let key = format!("k{i}");
        let got = latest.iter().find(|m| m.key == key).unwrap().value;
        assert!(got == *v, "latest {key}: {got:e} != {v:e}");
        let history = store
            .metric_history(&id, &key, None, 0)
            .await
            .unwrap()
            .items;
        assert_eq!(history[0].value, *v, "history {key}");
    }
    store.close().await;
    std::fs::remove_dir_all(&dir).ok();
}
