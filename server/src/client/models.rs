//! `mlflow models ...`: registered models, versions, stages and aliases.

use serde_json::{json, Value};

use super::table::{self, clip, fields, int, items, s, version_key, Table};
use super::{Client, ClientError};
use crate::cli::models::{
    AliasCommand, ModelsCommand, ModelsCreateArgs, ModelsListArgs, TransitionArgs,
    TransitionRequestCommand, VersionsCommand,
};

pub fn run(client: &Client, command: ModelsCommand) -> Result<String, ClientError> {
    match command {
        ModelsCommand::List(args) => list(client, &args),
        ModelsCommand::Create(args) => create(client, &args),
        ModelsCommand::Get(args) => {
            let reply = get_model(client, args.name())?;
            if args.output.json {
                return Ok(table::json(&reply));
            }
            Ok(describe(&reply["registered_model"]))
        }
        ModelsCommand::Delete(args) => {
            let reply = client.delete("registered-models/delete", json!({"name": args.name()}))?;
            Ok(if args.output.json {
                table::json(&reply)
            } else {
                format!(
                    "Deleted registered model '{}' and its versions.\n",
                    args.name()
                )
            })
        }
        ModelsCommand::TransitionRequest(t) => match t.command {
            TransitionRequestCommand::Create(args) => transition(client, &args),
        },
        ModelsCommand::Versions(v) => match v.command {
            VersionsCommand::List(args) => {
                // Searching versions of a missing model finds nothing; say that it is missing.
                let model = get_model(client, args.name())?;
                let versions = list_versions(client, args.name())?;
                if args.output.json {
                    return Ok(table::json(&json!({ "model_versions": versions })));
                }
                Ok(versions_table(&model["registered_model"], &versions))
            }
        },
        ModelsCommand::Serve(_)
        | ModelsCommand::Predict(_)
        | ModelsCommand::GenerateDockerfile(_)
        | ModelsCommand::BuildDocker(_) => Err(ClientError::Config(
            "model deployment commands run locally (crate::serving); they are not registry \
             client commands"
                .into(),
        )),
        ModelsCommand::Alias(a) => match a.command {
            AliasCommand::Set(args) => {
                let body = json!({
                    "name": args.name,
                    "alias": args.alias,
                    "version": args.version.to_string(),
                });
                let reply = client.post("registered-models/alias", body)?;
                Ok(if args.output.json {
                    table::json(&reply)
                } else {
                    format!(
                        "Alias '{}' of model '{}' now points to version {} (models:/{}@{}).\n",
                        args.alias, args.name, args.version, args.name, args.alias
                    )
                })
            }
            AliasCommand::Delete(args) => {
                let body = json!({"name": args.name, "alias": args.alias});
                let reply = client.delete("registered-models/alias", body)?;
                Ok(if args.output.json {
                    table::json(&reply)
                } else {
                    format!("Deleted alias '{}' of model '{}'.\n", args.alias, args.name)
                })
            }
        },
    }
}

fn get_model(client: &Client, name: &str) -> Result<Value, ClientError> {
    client.get("registered-models/get", &[("name", name.to_string())])
}

fn list(client: &Client, args: &ModelsListArgs) -> Result<String, ClientError> {
    let models = client.collect_pages("registered_models", None, |token| {
        let mut query = vec![("max_results", client.page_size().to_string())];
        if let Some(filter) = &args.filter {
            query.push(("filter", filter.clone()));
        }
        if let Some(token) = token {
            query.push(("page_token", token.to_string()));
        }
        client.get("registered-models/search", &query)
    })?;
    if args.output.json {
        return Ok(table::json(&json!({ "registered_models": models })));
    }
    let mut t = Table::new(&[
        "NAME",
        "VERSION",
        "STAGE",
        "ALIASES",
        "LAST UPDATED (UTC)",
        "DESCRIPTION",
    ]);
    for model in &models {
        let name = s(model, "name");
        let description = clip(s(model, "description"), 60);
        let mut latest: Vec<&Value> = items(model, "latest_versions").iter().collect();
        latest.sort_by_key(|v| version_key(s(v, "version")));
        if latest.is_empty() {
            let updated = table::time(int(model, "last_updated_timestamp"));
            t.row(vec![
                name.into(),
                "-".into(),
                "-".into(),
                "".into(),
                updated,
                description.clone(),
            ]);
        }
        for version in latest {
            let number = s(version, "version");
            t.row(vec![
                name.into(),
                number.into(),
                s(version, "current_stage").into(),
                model_aliases_of(model, number),
                table::time(int(version, "last_updated_timestamp")),
                description.clone(),
            ]);
        }
    }
    Ok(t.render())
}

/// The aliases that a registered model's `aliases[{alias, version}]` gives `version`.
fn model_aliases_of(model: &Value, version: &str) -> String {
    items(model, "aliases")
        .iter()
        .filter(|a| s(a, "version") == version)
        .map(|a| s(a, "alias"))
        .collect::<Vec<_>>()
        .join(",")
}

fn create(client: &Client, args: &ModelsCreateArgs) -> Result<String, ClientError> {
    let mut body = json!({ "name": args.name });
    if let Some(description) = &args.description {
        body["description"] = json!(description);
    }
    if !args.tags.is_empty() {
        let mut tags = Vec::new();
        for tag in &args.tags {
            let (key, value) = tag.split_once('=').ok_or_else(|| {
                ClientError::Config(format!("--tag must be KEY=VALUE, got '{tag}'"))
            })?;
            tags.push(json!({"key": key, "value": value}));
        }
        body["tags"] = Value::Array(tags);
    }
    let reply = client.post("registered-models/create", body)?;
    if args.output.json {
        return Ok(table::json(&reply));
    }
    Ok(format!("Created registered model '{}'.\n", args.name))
}

fn transition(client: &Client, args: &TransitionArgs) -> Result<String, ClientError> {
    let stage = args.stage.as_str();
    let body = json!({
        "name": args.name,
        "version": args.version.to_string(),
        "stage": stage,
        "archive_existing_versions": args.archive_existing_versions,
    });
    let reply = client.post("model-versions/transition-stage", body)?;
    if args.output.json {
        return Ok(table::json(&reply));
    }
    let archived = if args.archive_existing_versions {
        format!(" Other versions that were in {stage} are now Archived.")
    } else {
        String::new()
    };
    Ok(format!(
        "Transitioned '{}' version {} to {stage}.{archived}\n\
         (Applied directly with model-versions/transition-stage: this server has no \
         approval step for transition requests.)\n",
        args.name, args.version
    ))
}

fn list_versions(client: &Client, name: &str) -> Result<Vec<Value>, ClientError> {
    let filter = format!("name = {}", quote(name)?);
    let mut versions = client.collect_pages("model_versions", None, |token| {
        let mut query = vec![
            ("filter", filter.clone()),
            ("max_results", client.page_size().to_string()),
        ];
        if let Some(token) = token {
            query.push(("page_token", token.to_string()));
        }
        client.get("model-versions/search", &query)
    })?;
    versions.sort_by_key(|v| std::cmp::Reverse(version_key(s(v, "version"))));
    Ok(versions)
}

/// A search-filter string literal for `value`.
fn quote(value: &str) -> Result<String, ClientError> {
    if !value.contains('\'') {
        Ok(format!("'{value}'"))
    } else if !value.contains('"') {
        Ok(format!("\"{value}\""))
    } else {
        Err(ClientError::Config(format!(
            "cannot search for a name with both kinds of quotes: {value}"
        )))
    }
}

/// The versions of `model`. Aliases come from the model too: the Python server leaves them
/// out of searched and nested versions.
fn versions_table(model: &Value, versions: &[Value]) -> String {
    let mut t = Table::new(&[
        "VERSION",
        "STAGE",
        "STATUS",
        "ALIASES",
        "CREATED (UTC)",
        "RUN ID",
        "SOURCE",
    ]);
    for v in versions {
        let number = s(v, "version");
        let mut aliases: Vec<&str> = items(v, "aliases")
            .iter()
            .filter_map(Value::as_str)
            .chain(
                items(model, "aliases")
                    .iter()
                    .filter(|a| s(a, "version") == number)
                    .map(|a| s(a, "alias")),
            )
            .collect();
        aliases.sort_unstable();
        aliases.dedup();
        t.row(vec![
            number.into(),
            s(v, "current_stage").into(),
            s(v, "status").into(),
            aliases.join(","),
            table::time(int(v, "creation_timestamp")),
            s(v, "run_id").into(),
            s(v, "source").into(),
        ]);
    }
    t.render()
}

fn describe(model: &Value) -> String {
    let aliases = items(model, "aliases")
        .iter()
        .map(|a| format!("{}={}", s(a, "alias"), s(a, "version")))
        .collect::<Vec<_>>()
        .join(", ");
    let mut out = fields(&[
        ("Name", s(model, "name").into()),
        ("Description", s(model, "description").into()),
        (
            "Created (UTC)",
            table::time(int(model, "creation_timestamp")),
        ),
        (
            "Last updated (UTC)",
            table::time(int(model, "last_updated_timestamp")),
        ),
        ("Tags", table::tags(model, "tags")),
        ("Aliases", aliases),
    ]);
    let mut latest: Vec<Value> = items(model, "latest_versions").to_vec();
    latest.sort_by_key(|v| std::cmp::Reverse(version_key(s(v, "version"))));
    out.push_str("\nLatest version per stage:\n");
    out.push_str(&versions_table(model, &latest));
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_quoted_for_filters() {
        assert_eq!(quote("m").ok().as_deref(), Some("'m'"));
        assert_eq!(quote("it's").ok().as_deref(), Some("\"it's\""));
        assert!(quote("a'b\"c").is_err());
    }

    #[test]
    fn list_rows_carry_stage_and_aliases() {
        let model = json!({
            "name": "m",
            "aliases": [{"alias": "champion", "version": "2"}],
            "latest_versions": [
                {"version": "2", "current_stage": "Production"},
                {"version": "10", "current_stage": "Staging"}
            ]
        });
        assert_eq!(model_aliases_of(&model, "2"), "champion");
        assert_eq!(model_aliases_of(&model, "10"), "");
    }
}
