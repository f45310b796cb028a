//! `mlflow runs ...`, with the Python CLI's flags and messages.

use serde_json::{json, Value};

use super::table::{self, fields, int, items, s, Table};
use super::{Client, ClientError};
use crate::cli::runs::{RunsCommand, RunsListArgs};

pub fn run(client: &Client, command: RunsCommand) -> Result<String, ClientError> {
    match command {
        RunsCommand::List(args) => list(client, &args),
        RunsCommand::Describe(args) => {
            let reply = client.get("runs/get", &[("run_id", args.run_id().to_string())])?;
            Ok(if args.output.json {
                table::json(&reply)
            } else {
                describe(&reply["run"])
            })
        }
        RunsCommand::Delete(args) => {
            let reply = client.post("runs/delete", json!({ "run_id": args.run_id() }))?;
            Ok(if args.output.json {
                table::json(&reply)
            } else {
                format!("Run with ID {} has been deleted.\n", args.run_id())
            })
        }
        RunsCommand::Restore(args) => {
            let reply = client.post("runs/restore", json!({ "run_id": args.run_id() }))?;
            Ok(if args.output.json {
                table::json(&reply)
            } else {
                format!("Run with id {} has been restored.\n", args.run_id())
            })
        }
    }
}

fn list(client: &Client, args: &RunsListArgs) -> Result<String, ClientError> {
    // Searching a missing experiment may find nothing; say that it is missing.
    let experiment_id = args.experiment_id.clone();
    client.get(
        "experiments/get",
        &[("experiment_id", experiment_id.clone())],
    )?;
    let mut runs = client.collect_pages("runs", None, |token| {
        let mut body = json!({
            "experiment_ids": [experiment_id],
            "run_view_type": args.view.wire_name(),
            "max_results": client.page_size(),
        });
        if let Some(token) = token {
            body["page_token"] = json!(token);
        }
        client.post("runs/search", body)
    })?;
    if args.output.json {
        return Ok(table::json(&json!({ "runs": runs })));
    }
    runs.sort_by_key(|r| std::cmp::Reverse(int(&r["info"], "start_time")));
    let mut t = Table::new(&["DATE (UTC)", "NAME", "ID", "STATUS", "LIFECYCLE"]);
    for r in &runs {
        let info = &r["info"];
        t.row(vec![
            table::time(int(info, "start_time")),
            s(info, "run_name").into(),
            s(info, "run_id").into(),
            s(info, "status").into(),
            s(info, "lifecycle_stage").into(),
        ]);
    }
    Ok(t.render())
}

fn describe(run: &Value) -> String {
    let info = &run["info"];
    let data = &run["data"];
    let mut out = fields(&[
        ("Run ID", s(info, "run_id").into()),
        ("Name", s(info, "run_name").into()),
        ("Experiment ID", s(info, "experiment_id").into()),
        ("Status", s(info, "status").into()),
        ("Lifecycle stage", s(info, "lifecycle_stage").into()),
        ("User", s(info, "user_id").into()),
        ("Start (UTC)", table::time(int(info, "start_time"))),
        ("End (UTC)", table::time(int(info, "end_time"))),
        ("Artifact URI", s(info, "artifact_uri").into()),
    ]);
    let mut section = |title: &str, headers: &[&'static str], rows: Vec<Vec<String>>| {
        if rows.is_empty() {
            return;
        }
        let mut t = Table::new(headers);
        for row in rows {
            t.row(row);
        }
        out.push_str(&format!("\n{title}:\n{}", t.render()));
    };
    let kv = |key: &str| -> Vec<Vec<String>> {
        let mut rows: Vec<Vec<String>> = items(data, key)
            .iter()
            .map(|p| vec![s(p, "key").to_string(), s(p, "value").to_string()])
            .collect();
        rows.sort();
        rows
    };
    section("Parameters", &["KEY", "VALUE"], kv("params"));
    let mut metrics: Vec<Vec<String>> = items(data, "metrics")
        .iter()
        .map(|m| {
            let value = match m.get("value") {
                Some(Value::String(v)) => v.clone(),
                Some(v) => v.to_string(),
                None => String::new(),
            };
            let step = int(m, "step").unwrap_or(0).to_string();
            vec![s(m, "key").to_string(), value, step]
        })
        .collect();
    metrics.sort();
    section("Metrics (latest)", &["KEY", "VALUE", "STEP"], metrics);
    section("Tags", &["KEY", "VALUE"], kv("tags"));
    out
}
