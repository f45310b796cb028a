//! Backend-store URIs as MLflow users write them (SQLAlchemy style), and their sqlx form.

use super::sql::Dialect;

/// A parsed `--backend-store-uri`.
#[derive(Debug, Clone, PartialEq)]
pub enum StoreUri {
    Sqlite { path: String, memory: bool },
    Postgres { url: String },
    Mysql { url: String },
}

impl StoreUri {
    /// Parses `sqlite:///rel.db`, `sqlite:////abs.db`, `sqlite:///:memory:`,
    /// `postgresql[+driver]://...`, `mysql[+driver]://...` and `mariadb[+driver]://...`.
    pub fn parse(uri: &str) -> Result<Self, String> {
        let (scheme, rest) = uri.split_once("://").ok_or_else(|| {
            format!(
                "Invalid backend store URI '{}': expected a URI such as sqlite:///mlflow.db",
                redact(uri)
            )
        })?;
        let base = scheme
            .split('+')
            .next()
            .unwrap_or(scheme)
            .to_ascii_lowercase();
        match base.as_str() {
            "sqlite" => {
                // SQLAlchemy: sqlite:///relative/path, sqlite:////absolute/path.
                let path = rest.strip_prefix('/').unwrap_or(rest);
                let path = path.split('?').next().unwrap_or(path).to_string();
                let memory = path.is_empty() || path == ":memory:";
                Ok(StoreUri::Sqlite { path, memory })
            }
            "postgresql" | "postgres" => Ok(StoreUri::Postgres {
                url: format!("postgres://{rest}"),
            }),
            "mysql" | "mariadb" => Ok(StoreUri::Mysql {
                url: format!("mysql://{rest}"),
            }),
            _ => Err(format!(
                "Unsupported backend store URI scheme '{scheme}'. Use sqlite:///PATH, \
                 postgresql://USER:PASSWORD@HOST/DB or mysql://USER:PASSWORD@HOST/DB"
            )),
        }
    }

    pub fn dialect(&self) -> Dialect {
        match self {
            StoreUri::Sqlite { .. } => Dialect::Sqlite,
            StoreUri::Postgres { .. } => Dialect::Postgres,
            StoreUri::Mysql { .. } => Dialect::Mysql,
        }
    }

    /// The URL sqlx's Any driver understands.
    pub fn sqlx_url(&self) -> String {
        match self {
            StoreUri::Sqlite { memory: true, .. } => "sqlite::memory:".to_string(),
            StoreUri::Sqlite { path, .. } => format!("sqlite://{path}?mode=rwc"),
            StoreUri::Postgres { url } | StoreUri::Mysql { url } => url.clone(),
        }
    }
}

/// Hides the password of a URI for messages and logs.
pub fn redact(uri: &str) -> String {
    let Some((scheme, rest)) = uri.split_once("://") else {
        return uri.to_string();
    };
    let (authority, tail) = match rest.find('/') {
        Some(i) => rest.split_at(i),
        None => (rest, ""),
    };
    match authority.rsplit_once('@') {
        Some((userinfo, host)) => {
            let user = userinfo.split(':').next().unwrap_or("");
            format!("{scheme}://{user}:***@{host}{tail}")
        }
        None => uri.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sqlite_paths_follow_sqlalchemy() {
        assert_eq!(
            StoreUri::parse("sqlite:///mlflow.db").unwrap(),
            StoreUri::Sqlite {
                path: "mlflow.db".into(),
                memory: false
            }
        );
        assert_eq!(
            StoreUri::parse("sqlite:////var/lib/mlflow/m.db").unwrap(),
            StoreUri::Sqlite {
                path: "/var/lib/mlflow/m.db".into(),
                memory: false
            }
        );
        assert!(matches!(
            StoreUri::parse("sqlite:///:memory:").unwrap(),
            StoreUri::Sqlite { memory: true, .. }
        ));
    }

    #[test]
    fn server_uris() {
        assert_eq!(
            StoreUri::parse("postgresql+psycopg2://u:p@h:5432/db")
                .unwrap()
                .sqlx_url(),
            "postgres://u:p@h:5432/db"
        );
        assert_eq!(
            StoreUri::parse("mysql+pymysql://u:p@h/db")
                .unwrap()
                .dialect(),
            Dialect::Mysql
        );
        assert!(StoreUri::parse("oracle://x").is_err());
        assert!(StoreUri::parse("mlflow.db").is_err());
    }

    #[test]
    fn redaction_hides_passwords() {
        assert_eq!(
            redact("postgresql://u:secret@h/db"),
            "postgresql://u:***@h/db"
        );
        assert_eq!(redact("sqlite:///x.db"), "sqlite:///x.db");
        assert!(!redact("mysql://root:p%40ss@h:3306/x?ssl=1").contains("p%40ss"));
    }
}
