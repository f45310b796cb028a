//! What each kind of search accepts, and the checks that turn raw clauses into [`Clause`]s.

use super::parser::{parse_clauses, parse_order_item, RawKey};
use super::{Clause, Comparator, Entity, Literal, OrderKey};
use crate::error::{MlflowError, Result};

/// Which search a filter belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SearchTarget {
    Runs,
    Experiments,
    LoggedModels,
    /// search-registered-models (`SearchModelUtils`).
    RegisteredModels,
    /// search-model-versions (`SearchModelVersionUtils`).
    ModelVersions,
    /// search-evaluation-datasets (`SearchEvaluationDatasetsUtils`).
    EvaluationDatasets,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum AttrType {
    Text {
        allows_in: bool,
    },
    Number,
    /// An integer that may also be written as a quoted string (`version_number = '3'`).
    Integer,
}

impl SearchTarget {
    fn entity_for_prefix(self, prefix: &str) -> Option<Entity> {
        let p = prefix.to_ascii_lowercase();
        match (self, p.as_str()) {
            (Self::EvaluationDatasets, "tags") => Some(Entity::Tag),
            (Self::EvaluationDatasets, _) => None,
            // MLflow's experiment search knows only the singular `attribute.` prefix.
            (_, "attribute") => Some(Entity::Attribute),
            (Self::Runs | Self::LoggedModels, "attributes") => Some(Entity::Attribute),
            (_, "tag" | "tags") => Some(Entity::Tag),
            (Self::Runs, "attr" | "run") => Some(Entity::Attribute),
            (Self::Runs, "metric" | "metrics") => Some(Entity::Metric),
            (Self::Runs, "param" | "params" | "parameter" | "parameters") => Some(Entity::Param),
            (Self::Runs, "dataset" | "datasets") => Some(Entity::Dataset),
            (Self::LoggedModels, "param" | "params") => Some(Entity::Param),
            (Self::LoggedModels, "metric" | "metrics") => Some(Entity::Metric),
            _ => None,
        }
    }

    /// The canonical attribute name and its type.
    fn attribute(self, name: &str) -> Option<(&'static str, AttrType)> {
        const TEXT: AttrType = AttrType::Text { allows_in: false };
        const ID: AttrType = AttrType::Text { allows_in: true };
        match self {
            Self::Runs => match name {
                "run_id" => Some(("run_id", ID)),
                "run_name" | "run name" | "Run name" | "Run Name" => Some(("run_name", TEXT)),
                "status" => Some(("status", TEXT)),
                "user_id" => Some(("user_id", TEXT)),
                "artifact_uri" => Some(("artifact_uri", TEXT)),
                "start_time" | "created" | "Created" => Some(("start_time", AttrType::Number)),
                "end_time" => Some(("end_time", AttrType::Number)),
                _ => None,
            },
            Self::LoggedModels => match name {
                "name" => Some(("name", ID)),
                "model_id" => Some(("model_id", ID)),
                "model_type" => Some(("model_type", ID)),
                "status" => Some(("status", ID)),
                "source_run_id" => Some(("source_run_id", ID)),
                "creation_timestamp" | "creation_time" => {
                    Some(("creation_timestamp", AttrType::Number))
                }
                "last_updated_timestamp" => Some(("last_updated_timestamp", AttrType::Number)),
                _ => None,
            },
            Self::Experiments => match name {
                "name" => Some(("name", TEXT)),
                "experiment_id" => Some(("experiment_id", ID)),
                "creation_time" => Some(("creation_time", AttrType::Number)),
                "last_update_time" => Some(("last_update_time", AttrType::Number)),
                _ => None,
            },
            Self::RegisteredModels => match name {
                "name" => Some(("name", ID)),
                _ => None,
            },
            Self::ModelVersions => match name {
                "name" => Some(("name", ID)),
                "run_id" => Some(("run_id", ID)),
                "source_path" => Some(("source_path", TEXT)),
                "version_number" => Some(("version_number", AttrType::Integer)),
                _ => None,
            },
            Self::EvaluationDatasets => match name {
                "name" => Some(("name", ID)),
                "created_by" => Some(("created_by", TEXT)),
                "last_updated_by" => Some(("last_updated_by", TEXT)),
                // Whole milliseconds: MLflow refuses `created_time > 1.5`.
                "created_time" => Some(("created_time", AttrType::Integer)),
                "last_update_time" => Some(("last_update_time", AttrType::Integer)),
                _ => None,
            },
        }
    }

    fn resolve_key(self, key: &RawKey) -> Result<(Entity, String)> {
        match &key.prefix {
            Some(prefix) => match self.entity_for_prefix(prefix) {
                Some(entity) => Ok((entity, key.name.clone())),
                None => Err(MlflowError::invalid(format!(
                    "Invalid entity type '{prefix}'. Valid values are {}",
                    self.valid_prefixes()
                ))),
            },
            None => Ok((Entity::Attribute, key.name.clone())),
        }
    }

    fn valid_prefixes(self) -> &'static str {
        match self {
            Self::Runs => "['metrics', 'params', 'tags', 'attributes', 'datasets']",
            Self::Experiments => "['attribute', 'tags']",
            Self::LoggedModels => "['attributes', 'tags', 'params', 'metrics']",
            Self::RegisteredModels | Self::ModelVersions => "('attribute', 'tag', 'tags')",
            Self::EvaluationDatasets => "['tags']",
        }
    }

    fn attribute_names(self) -> &'static str {
        match self {
            Self::Runs => {
                "['run_id', 'run_name', 'status', 'user_id', 'artifact_uri', 'start_time', \
                 'end_time', 'created']"
            }
            Self::Experiments => "['name', 'experiment_id', 'creation_time', 'last_update_time']",
            Self::LoggedModels => {
                "['name', 'model_id', 'model_type', 'status', 'source_run_id', \
                 'creation_timestamp', 'last_updated_timestamp']"
            }
            Self::RegisteredModels => "{'name'}",
            Self::ModelVersions => "{'name', 'run_id', 'source_path', 'version_number'}",
            Self::EvaluationDatasets => {
                "{'name', 'created_time', 'last_update_time', 'created_by', 'last_updated_by'}"
            }
        }
    }

    fn check_clause(
        self,
        entity: Entity,
        key: String,
        cmp: Comparator,
        value: Literal,
    ) -> Result<Clause> {
        use Comparator::*;
        let bad = |what: &str| -> MlflowError {
            MlflowError::invalid(format!(
                "Invalid comparator '{}' or value for {what} '{key}'",
                cmp.as_str()
            ))
        };
        let key = match entity {
            Entity::Metric => {
                if !matches!(cmp, Eq | Ne | Lt | Le | Gt | Ge) || !matches!(value, Literal::Num(_))
                {
                    return Err(MlflowError::invalid(format!(
                        "Invalid comparison for metric '{key}': metrics take =, !=, <, <=, >, >= \
                         with an unquoted number"
                    )));
                }
                key
            }
            Entity::Tag
                if matches!(
                    self,
                    Self::RegisteredModels | Self::ModelVersions | Self::EvaluationDatasets
                ) && !matches!(cmp, Eq | Ne | Like | ILike) =>
            {
                return Err(MlflowError::invalid(format!(
                    "Invalid comparator for tag: {}",
                    cmp.as_str()
                )));
            }
            Entity::Param | Entity::Tag => {
                let ok = match cmp {
                    Eq | Ne | Like | ILike => matches!(value, Literal::Str(_)),
                    IsNull | IsNotNull => true,
                    _ => false,
                };
                if !ok {
                    let noun = if entity == Entity::Param {
                        "param"
                    } else {
                        "tag"
                    };
                    return Err(MlflowError::invalid(format!(
                        "Invalid comparison for {noun} '{key}': use =, !=, LIKE, ILIKE with a \
                         quoted string, or IS NULL / IS NOT NULL"
                    )));
                }
                key
            }
            Entity::Dataset => {
                if !matches!(key.as_str(), "name" | "digest" | "context") {
                    return Err(MlflowError::invalid(format!(
                        "Invalid dataset key '{key}'. Valid keys are ['name', 'digest', 'context']"
                    )));
                }
                let ok = match cmp {
                    Eq | Ne | Like | ILike => matches!(value, Literal::Str(_)),
                    In | NotIn => matches!(value, Literal::List(_)),
                    _ => false,
                };
                if !ok {
                    return Err(bad("dataset field"));
                }
                key
            }
            Entity::Attribute => {
                let Some((canonical, ty)) = self.attribute(&key) else {
                    return Err(MlflowError::invalid(format!(
                        "Invalid attribute key '{key}' specified. Valid keys are {}",
                        self.attribute_names()
                    )));
                };
                let mut value = value;
                let ok = match ty {
                    AttrType::Integer => {
                        let number = match &value {
                            Literal::Num(n) if n.fract() == 0.0 => Some(*n),
                            Literal::Str(s) => s.trim().parse::<i64>().ok().map(|n| n as f64),
                            _ => None,
                        };
                        match number {
                            Some(n) if matches!(cmp, Eq | Ne | Lt | Le | Gt | Ge) => {
                                value = Literal::Num(n);
                                true
                            }
                            Some(_) => false,
                            None => {
                                return Err(MlflowError::invalid(format!(
                                    "Invalid value for numeric attribute '{key}': {}",
                                    match &value {
                                        Literal::Num(n) => n.to_string(),
                                        Literal::Str(s) => format!("'{s}'"),
                                        _ => "a list".to_string(),
                                    }
                                )))
                            }
                        }
                    }
                    AttrType::Number => {
                        matches!(cmp, Eq | Ne | Lt | Le | Gt | Ge)
                            && matches!(value, Literal::Num(_))
                    }
                    AttrType::Text { allows_in } => match cmp {
                        Eq | Ne | Like | ILike => matches!(value, Literal::Str(_)),
                        In | NotIn => allows_in && matches!(value, Literal::List(_)),
                        _ => false,
                    },
                };
                if !ok {
                    return Err(bad("attribute"));
                }
                return Ok(Clause {
                    entity,
                    key: canonical.to_string(),
                    comparator: cmp,
                    value,
                });
            }
        };
        Ok(Clause {
            entity,
            key,
            comparator: cmp,
            value,
        })
    }

    fn orderable(self, entity: Entity, key: &str) -> Result<String> {
        match (self, entity) {
            // MLflow's SQL store sorts registered models by name or by last update only;
            // `timestamp` is its alias for the latter.
            (Self::RegisteredModels, Entity::Attribute) => match key {
                "name" => Ok("name".into()),
                "timestamp" | "last_updated_timestamp" => Ok("last_updated_timestamp".into()),
                _ => Err(MlflowError::invalid(format!(
                    "Invalid order by key '{key}' specified. Valid keys are \
                     '{{'name', 'timestamp'}}'"
                ))),
            },
            (Self::ModelVersions, Entity::Attribute) => match key {
                "name" | "version_number" | "creation_timestamp" | "last_updated_timestamp" => {
                    Ok(key.to_string())
                }
                _ => Err(MlflowError::invalid(format!(
                    "Invalid attribute key '{key}' specified. Valid keys are '{{'name', \
                     'version_number', 'creation_timestamp', 'last_updated_timestamp'}}'"
                ))),
            },
            (Self::EvaluationDatasets, Entity::Attribute) => match key {
                "name" | "created_time" | "last_update_time" => Ok(key.to_string()),
                _ => Err(MlflowError::invalid(format!(
                    "Invalid attribute key '{key}' specified. Valid keys are: \
                     {{'name', 'created_time', 'last_update_time'}}"
                ))),
            },
            (Self::Runs, Entity::Metric | Entity::Param | Entity::Tag) => Ok(key.to_string()),
            // The spelled-out run-name aliases are for filters only, as in MLflow.
            (Self::Runs, Entity::Attribute) if key.contains(' ') => Err(MlflowError::invalid(
                format!("Invalid order_by key '{key}'. Use 'run_name'"),
            )),
            (_, Entity::Attribute) => self
                .attribute(key)
                .map(|(canonical, _)| canonical.to_string())
                .ok_or_else(|| {
                    MlflowError::invalid(format!(
                        "Invalid order_by key '{key}'. Valid attribute keys are {}",
                        self.attribute_names()
                    ))
                }),
            _ => Err(MlflowError::invalid(format!(
                "Invalid order_by entity for key '{key}'"
            ))),
        }
    }
}

/// Parses and checks a filter string for `target`.
pub fn parse_filter(target: SearchTarget, filter: &str) -> Result<Vec<Clause>> {
    parse_clauses(filter)?
        .into_iter()
        .map(|raw| {
            let (entity, key) = target.resolve_key(&raw.key)?;
            target.check_clause(entity, key, raw.comparator, raw.value)
        })
        .collect()
}

/// Parses and checks `order_by` items for `target`.
pub fn parse_order_by(target: SearchTarget, items: &[String]) -> Result<Vec<OrderKey>> {
    items
        .iter()
        .map(|item| {
            let (raw, ascending) = parse_order_item(item)?;
            let (entity, key) = target.resolve_key(&raw)?;
            let key = target.orderable(entity, &key)?;
            Ok(OrderKey {
                entity,
                key,
                ascending,
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn run_filters() {
        let c = parse_filter(
            SearchTarget::Runs,
            "metrics.acc >= 0.9 AND params.lr = '0.1' AND attributes.`Run Name` LIKE 'a%' \
             AND run_id IN ('x') AND created > 5 AND datasets.name = 'd' AND tags.t IS NULL",
        )
        .unwrap();
        assert_eq!(c.len(), 7);
        assert_eq!(c[2].key, "run_name");
        assert_eq!(c[4].key, "start_time");
        assert_eq!(c[5].entity, Entity::Dataset);
    }

    #[test]
    fn run_filter_errors() {
        for bad in [
            "metrics.acc = 'x'",
            "metrics.acc LIKE 'x'",
            "params.lr = 0.1",
            "params.lr > '1'",
            "status IN ('RUNNING')",
            "start_time = '1'",
            "foo = 'x'",
            "nope.x = 'y'",
            "datasets.size = 'x'",
        ] {
            assert!(parse_filter(SearchTarget::Runs, bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn experiment_filters() {
        let c = parse_filter(
            SearchTarget::Experiments,
            "name ILIKE '%x%' AND tags.team = 'a' AND creation_time > 0",
        )
        .unwrap();
        assert_eq!(c.len(), 3);
        assert!(parse_filter(SearchTarget::Experiments, "metrics.a > 1").is_err());
        assert!(parse_filter(SearchTarget::Experiments, "run_id = 'x'").is_err());
    }

    #[test]
    fn registry_filters() {
        let c = parse_filter(
            SearchTarget::RegisteredModels,
            "name LIKE 'probe%' AND tag.`mlflow.prompt.is_prompt` != 'true' AND tags.a = 'b'",
        )
        .unwrap();
        assert_eq!(c.len(), 3);
        assert_eq!(
            (c[1].entity, c[1].key.as_str()),
            (Entity::Tag, "mlflow.prompt.is_prompt")
        );
        parse_filter(SearchTarget::RegisteredModels, "name IN ('a', 'b')").unwrap();
        for bad in [
            "run_id = 'x'",
            "attributes.name = 'x'",
            "tags.a IS NULL",
            "name = 5",
            "metrics.a > 1",
        ] {
            assert!(
                parse_filter(SearchTarget::RegisteredModels, bad).is_err(),
                "{bad}"
            );
        }
        let c = parse_filter(
            SearchTarget::ModelVersions,
            "name = 'm' AND version_number >= '2' AND run_id IN ('r') AND source_path LIKE 'runs:/%'",
        )
        .unwrap();
        assert_eq!(c[1].value, Literal::Num(2.0));
        for bad in [
            "version_number = 1.5",
            "version_number LIKE '1'",
            "version_number IN ('1')",
            "source_path IN ('x')",
            "status = 'READY'",
            "tags.t IS NOT NULL",
        ] {
            assert!(
                parse_filter(SearchTarget::ModelVersions, bad).is_err(),
                "{bad}"
            );
        }
    }

    #[test]
    fn registry_order_by() {
        let o = parse_order_by(
            SearchTarget::RegisteredModels,
            &["timestamp DESC".into(), "name".into()],
        )
        .unwrap();
        assert_eq!(o[0].key, "last_updated_timestamp");
        assert!(parse_order_by(
            SearchTarget::RegisteredModels,
            &["creation_timestamp".into()]
        )
        .is_err());
        let o =
            parse_order_by(SearchTarget::ModelVersions, &["version_number DESC".into()]).unwrap();
        assert!(!o[0].ascending);
        assert!(parse_order_by(SearchTarget::ModelVersions, &["run_id".into()]).is_err());
    }

    #[test]
    fn order_by() {
        let o = parse_order_by(
            SearchTarget::Runs,
            &[
                "metrics.acc DESC".into(),
                "start_time".into(),
                "params.`a b` asc".into(),
            ],
        )
        .unwrap();
        assert!(!o[0].ascending && o[1].ascending);
        assert_eq!(o[2].key, "a b");
        assert!(parse_order_by(SearchTarget::Runs, &["bogus".into()]).is_err());
        assert!(parse_order_by(SearchTarget::Experiments, &["tags.x".into()]).is_err());
    }

    #[test]
    fn evaluation_dataset_filters() {
        let t = SearchTarget::EvaluationDatasets;
        let c = parse_filter(
            t,
            "name IN ('a', 'b') AND tags.env = 'prod' AND created_time >= 5 AND created_by = 'u'",
        )
        .unwrap();
        assert_eq!(c.len(), 4);
        assert_eq!(c[1].entity, Entity::Tag);
        assert!(parse_filter(t, "created_time > 1.5").is_err());
        assert!(parse_filter(t, "tags.env IS NULL").is_err());
        assert!(parse_filter(t, "tag.env = 'x'").is_err());
        assert!(parse_filter(t, "digest = 'x'").is_err());
        assert!(parse_order_by(t, &["last_update_time DESC".into()]).is_ok());
        assert!(parse_order_by(t, &["created_by".into()]).is_err());
    }
}
