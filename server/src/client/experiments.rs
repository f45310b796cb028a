//! `mlflow experiments ...`, with the Python CLI's flags and messages.

use serde_json::{json, Value};

use super::table::{self, fields, int, s, Table};
use super::{Client, ClientError};
use crate::cli::experiments::{ExperimentsCommand, ExperimentsGetArgs, ExperimentsListArgs};

pub fn run(client: &Client, command: ExperimentsCommand) -> Result<String, ClientError> {
    match command {
        ExperimentsCommand::List(args) => list(client, &args),
        ExperimentsCommand::Create(args) => {
            let mut body = json!({ "name": args.experiment_name });
            if let Some(location) = &args.artifact_location {
                body["artifact_location"] = json!(location);
            }
            let reply = client.post("experiments/create", body)?;
            Ok(if args.output.json {
                table::json(&reply)
            } else {
                format!(
                    "Created experiment '{}' with id {}\n",
                    args.experiment_name,
                    s(&reply, "experiment_id")
                )
            })
        }
        ExperimentsCommand::Get(args) => get(client, &args),
        ExperimentsCommand::Delete(args) => {
            let id = args.experiment_id();
            let reply = client.post("experiments/delete", json!({ "experiment_id": id }))?;
            Ok(if args.output.json {
                table::json(&reply)
            } else {
                format!("Experiment with ID {id} has been deleted.\n")
            })
        }
        ExperimentsCommand::Restore(args) => {
            let id = args.experiment_id();
            let reply = client.post("experiments/restore", json!({ "experiment_id": id }))?;
            Ok(if args.output.json {
                table::json(&reply)
            } else {
                format!("Experiment with id {id} has been restored.\n")
            })
        }
        ExperimentsCommand::Rename(args) => {
            let id = args.experiment.experiment_id();
            let body = json!({ "experiment_id": id, "new_name": args.new_name });
            let reply = client.post("experiments/update", body)?;
            Ok(if args.experiment.output.json {
                table::json(&reply)
            } else {
                format!(
                    "Experiment with id {id} has been renamed to '{}'.\n",
                    args.new_name
                )
            })
        }
    }
}

fn list(client: &Client, args: &ExperimentsListArgs) -> Result<String, ClientError> {
    let limit = args
        .max_results
        .map(|m| usize::try_from(m).unwrap_or(usize::MAX));
    let mut experiments = client.collect_pages("experiments", limit, |token| {
        let mut body = json!({
            "max_results": args.max_results.map_or(client.page_size(), |m| m.min(client.page_size())),
            "view_type": args.view.wire_name(),
        });
        if let Some(filter) = &args.filter {
            body["filter"] = json!(filter);
        }
        if let Some(token) = token {
            body["page_token"] = json!(token);
        }
        client.post("experiments/search", body)
    })?;
    if args.output.json {
        return Ok(table::json(&json!({ "experiments": experiments })));
    }
    experiments.sort_by_key(|e| {
        let id = s(e, "experiment_id");
        (id.parse::<u64>().unwrap_or(u64::MAX), id.to_string())
    });
    let mut t = Table::new(&["EXPERIMENT ID", "NAME", "LIFECYCLE", "ARTIFACT LOCATION"]);
    for e in &experiments {
        t.row(vec![
            s(e, "experiment_id").into(),
            s(e, "name").into(),
            s(e, "lifecycle_stage").into(),
            s(e, "artifact_location").into(),
        ]);
    }
    Ok(t.render())
}

fn get(client: &Client, args: &ExperimentsGetArgs) -> Result<String, ClientError> {
    let reply = match (&args.experiment_id, &args.experiment_name) {
        (Some(id), _) => client.get("experiments/get", &[("experiment_id", id.clone())])?,
        (None, Some(name)) => client.get(
            "experiments/get-by-name",
            &[("experiment_name", name.clone())],
        )?,
        (None, None) => {
            return Err(ClientError::Config(
                "give --experiment-id or --experiment-name".into(),
            ))
        }
    };
    if args.output.json {
        return Ok(table::json(&reply));
    }
    let e: &Value = &reply["experiment"];
    Ok(fields(&[
        ("Experiment ID", s(e, "experiment_id").into()),
        ("Name", s(e, "name").into()),
        ("Artifact location", s(e, "artifact_location").into()),
        ("Lifecycle stage", s(e, "lifecycle_stage").into()),
        ("Created (UTC)", table::time(int(e, "creation_time"))),
        (
            "Last updated (UTC)",
            table::time(int(e, "last_update_time")),
        ),
        ("Tags", table::tags(e, "tags")),
    ]))
}
