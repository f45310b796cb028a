//! Backend-store URIs as MLflow users write them (SQLAlchemy style), and their sqlx form.
//!
//! SQLAlchemy spells a database as `dialect[+driver]://user:password@host:port/db?options`,
//! with driver-specific option names (`host=/socket/dir` for libpq, `unix_socket=` for
//! PyMySQL, `ssl_ca=` for mysqlclient, ...). The parse keeps the parts and translates the
//! options sqlx understands; the password stays percent-encoded as given and never reaches
//! a message (see [`redact`]).

use super::sql::Dialect;

/// A parsed `--backend-store-uri`.
#[derive(Debug, Clone, PartialEq)]
pub enum StoreUri {
    Sqlite { path: String, memory: bool },
    Postgres(Server),
    Mysql(Server),
}

/// The parts of a PostgreSQL or MySQL URI.
#[derive(Clone, PartialEq)]
pub struct Server {
    /// Percent-encoded as in the URI.
    pub user: String,
    /// Percent-encoded as in the URI; `None` when the URI has none.
    pub password: Option<String>,
    /// Empty when the URI names none (a unix socket, or the driver's default host).
    pub host: String,
    pub port: Option<u16>,
    pub database: String,
    /// Options in sqlx's names, already translated.
    pub options: Vec<(String, String)>,
}

impl std::fmt::Debug for Server {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Server")
            .field("user", &self.user)
            .field("password", &self.password.as_ref().map(|_| "***"))
            .field("host", &self.host)
            .field("port", &self.port)
            .field("database", &self.database)
            .finish_non_exhaustive()
    }
}

impl StoreUri {
    /// Parses `sqlite:///rel.db`, `sqlite:////abs.db`, `sqlite:///:memory:`,
    /// `postgresql[+driver]://...`, `postgres://...`, `mysql[+driver]://...` and
    /// `mariadb[+driver]://...`.
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
            "postgresql" | "postgres" => Ok(StoreUri::Postgres(parse_server(
                uri,
                rest,
                Dialect::Postgres,
            )?)),
            "mysql" | "mariadb" => Ok(StoreUri::Mysql(parse_server(uri, rest, Dialect::Mysql)?)),
            _ => Err(format!(
                "Unsupported backend store URI scheme '{scheme}'. Use sqlite:///PATH, \
                 postgresql://USER:PASSWORD@HOST:PORT/DB or mysql://USER:PASSWORD@HOST:PORT/DB"
            )),
        }
    }

    pub fn dialect(&self) -> Dialect {
        match self {
            StoreUri::Sqlite { .. } => Dialect::Sqlite,
            StoreUri::Postgres(_) => Dialect::Postgres,
            StoreUri::Mysql(_) => Dialect::Mysql,
        }
    }

    /// The URL sqlx's Any driver understands. It holds the password: never log it.
    pub fn sqlx_url(&self) -> String {
        let (scheme, server) = match self {
            StoreUri::Sqlite { memory: true, .. } => return "sqlite::memory:".to_string(),
            StoreUri::Sqlite { path, .. } => return format!("sqlite://{path}?mode=rwc"),
            StoreUri::Postgres(s) => ("postgres", s),
            StoreUri::Mysql(s) => ("mysql", s),
        };
        let mut url = format!("{scheme}://");
        if !server.user.is_empty() {
            url.push_str(&server.user);
            if let Some(password) = &server.password {
                url.push(':');
                url.push_str(password);
            }
            url.push('@');
        }
        // sqlx's URL parser wants a host; a socket given as an option takes precedence.
        url.push_str(if server.host.is_empty() {
            "localhost"
        } else {
            &server.host
        });
        if let Some(port) = server.port {
            url.push_str(&format!(":{port}"));
        }
        url.push('/');
        url.push_str(&server.database);
        for (i, (k, v)) in server.options.iter().enumerate() {
            url.push(if i == 0 { '?' } else { '&' });
            url.push_str(k);
            url.push('=');
            url.push_str(v);
        }
        url
    }
}

fn parse_server(uri: &str, rest: &str, dialect: Dialect) -> Result<Server, String> {
    let bad = |why: &str| format!("Invalid backend store URI '{}': {why}", redact(uri));
    let (main, query) = rest.split_once('?').unwrap_or((rest, ""));
    let (authority, database) = main.split_once('/').unwrap_or((main, ""));
    // The password may hold an encoded '@' only, but be lenient: the last '@' ends userinfo.
    let (userinfo, hostport) = match authority.rsplit_once('@') {
        Some((u, h)) => (Some(u), h),
        None => (None, authority),
    };
    let (user, password) = match userinfo {
        Some(u) => match u.split_once(':') {
            Some((user, pass)) => (user.to_string(), Some(pass.to_string())),
            None => (u.to_string(), None),
        },
        None => (String::new(), None),
    };
    let (host, port) = split_host_port(hostport).map_err(|e| bad(&e))?;
    if database.is_empty() {
        return Err(bad("the database name is missing (…/DATABASE)"));
    }
    let mut options = Vec::new();
    for pair in query.split('&').filter(|p| !p.is_empty()) {
        let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
        if let Some(opt) = translate_option(dialect, k, v) {
            options.push(opt);
        }
    }
    Ok(Server {
        user,
        password,
        host,
        port,
        database: database.to_string(),
        options,
    })
}

fn split_host_port(hostport: &str) -> Result<(String, Option<u16>), String> {
    // An IPv6 literal is bracketed: [::1]:5432.
    let (host, port) = if let Some(end) = hostport.strip_prefix('[').and_then(|h| h.find(']')) {
        let host = &hostport[..end + 2];
        let after = &hostport[end + 2..];
        (host, after.strip_prefix(':'))
    } else {
        match hostport.rsplit_once(':') {
            Some((h, p)) => (h, Some(p)),
            None => (hostport, None),
        }
    };
    let port = match port {
        Some("") | None => None,
        Some(p) => Some(
            p.parse::<u16>()
                .map_err(|_| format!("the port '{p}' is not a number"))?,
        ),
    };
    Ok((host.to_string(), port))
}

/// Maps one SQLAlchemy/driver option to sqlx's name for it; options sqlx has no use for
/// (pool settings, `connect_timeout`, driver tuning) are dropped.
fn translate_option(dialect: Dialect, key: &str, value: &str) -> Option<(String, String)> {
    let keep = |k: &str| Some((k.to_string(), value.to_string()));
    match dialect {
        Dialect::Postgres => match key {
            // libpq names, which psycopg2/psycopg/sqlx share.
            "sslmode" | "sslrootcert" | "sslcert" | "sslkey" | "host" | "hostaddr" | "port"
            | "user" | "password" | "dbname" | "application_name" | "options" => keep(key),
            "ssl" if is_true(value) => Some(("sslmode".into(), "require".into())),
            _ => None,
        },
        Dialect::Mysql => match key {
            "charset" | "collation" => keep(key),
            "unix_socket" | "socket" => keep("socket"),
            "ssl_ca" | "ssl-ca" => keep("ssl-ca"),
            "ssl_cert" | "ssl-cert" => keep("ssl-cert"),
            "ssl_key" | "ssl-key" => keep("ssl-key"),
            "ssl_mode" | "ssl-mode" | "sslmode" => Some((
                "ssl-mode".into(),
                value.to_ascii_uppercase().replace('-', "_"),
            )),
            "ssl" | "ssl_verify_cert" if is_true(value) => Some((
                "ssl-mode".into(),
                if key == "ssl" {
                    "REQUIRED"
                } else {
                    "VERIFY_CA"
                }
                .into(),
            )),
            _ => None,
        },
        Dialect::Sqlite => None,
    }
}

fn is_true(v: &str) -> bool {
    matches!(v.to_ascii_lowercase().as_str(), "1" | "true" | "yes" | "on")
}

/// Hides the password of a URI (in its userinfo and in a `password=` option) for messages
/// and logs.
pub fn redact(uri: &str) -> String {
    let Some((scheme, rest)) = uri.split_once("://") else {
        return uri.to_string();
    };
    let (main, query) = match rest.split_once('?') {
        Some((m, q)) => (m, Some(q)),
        None => (rest, None),
    };
    let (authority, tail) = match main.find('/') {
        Some(i) => main.split_at(i),
        None => (main, ""),
    };
    let mut out = match authority.rsplit_once('@') {
        Some((userinfo, host)) if userinfo.contains(':') => {
            let user = userinfo.split(':').next().unwrap_or("");
            format!("{scheme}://{user}:***@{host}{tail}")
        }
        _ => format!("{scheme}://{main}"),
    };
    if let Some(query) = query {
        let parts: Vec<String> = query
            .split('&')
            .map(|pair| match pair.split_once('=') {
                Some((k, _)) if k.eq_ignore_ascii_case("password") => format!("{k}=***"),
                _ => pair.to_string(),
            })
            .collect();
        out.push('?');
        out.push_str(&parts.join("&"));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn url(uri: &str) -> String {
        StoreUri::parse(uri).unwrap().sqlx_url()
    }

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
    fn postgres_spellings() {
        for scheme in [
            "postgresql",
            "postgres",
            "postgresql+psycopg2",
            "postgresql+psycopg",
            "postgresql+pg8000",
        ] {
            assert_eq!(
                url(&format!("{scheme}://u:p@h:5432/db")),
                "postgres://u:p@h:5432/db",
                "{scheme}"
            );
        }
        assert_eq!(
            url("postgresql://u:p%40ss@db.example.com/mlflow?sslmode=require&connect_timeout=10"),
            "postgres://u:p%40ss@db.example.com/mlflow?sslmode=require"
        );
        // A unix socket directory, libpq style, with no host in the authority.
        assert_eq!(
            url("postgresql://mlflow@/mlflow?host=/var/run/postgresql"),
            "postgres://mlflow@localhost/mlflow?host=/var/run/postgresql"
        );
        assert_eq!(
            url("postgresql://u@[::1]:5433/db"),
            "postgres://u@[::1]:5433/db"
        );
    }

    #[test]
    fn mysql_spellings() {
        for scheme in [
            "mysql",
            "mysql+pymysql",
            "mysql+mysqldb",
            "mysql+mysqlconnector",
            "mariadb",
            "mariadb+mariadbconnector",
            "mariadb+pymysql",
        ] {
            let uri = StoreUri::parse(&format!("{scheme}://root:pw@127.0.0.1:3306/m")).unwrap();
            assert_eq!(uri.dialect(), Dialect::Mysql);
            assert_eq!(
                uri.sqlx_url(),
                "mysql://root:pw@127.0.0.1:3306/m",
                "{scheme}"
            );
        }
        assert_eq!(
            url("mysql+pymysql://u@/m?unix_socket=/run/mysqld/mysqld.sock&charset=utf8mb4"),
            "mysql://u@localhost/m?socket=/run/mysqld/mysqld.sock&charset=utf8mb4"
        );
        assert_eq!(
            url("mysql://u:p@h/m?ssl_ca=/ca.pem&ssl_mode=verify-identity"),
            "mysql://u:p@h/m?ssl-ca=/ca.pem&ssl-mode=VERIFY_IDENTITY"
        );
    }

    #[test]
    fn bad_uris_are_refused_without_the_password() {
        assert!(StoreUri::parse("oracle://x").is_err());
        assert!(StoreUri::parse("mlflow.db").is_err());
        let err = StoreUri::parse("postgresql://u:secret@h:notaport/db").unwrap_err();
        assert!(!err.contains("secret"), "{err}");
        let err = StoreUri::parse("mysql://u:secret@h:3306").unwrap_err();
        assert!(!err.contains("secret"), "{err}");
        let debug = format!(
            "{:?}",
            StoreUri::parse("postgresql://u:secret@h/db").unwrap()
        );
        assert!(!debug.contains("secret"), "{debug}");
    }

    #[test]
    fn redaction_hides_passwords() {
        assert_eq!(
            redact("postgresql://u:secret@h/db"),
            "postgresql://u:***@h/db"
        );
        assert_eq!(redact("sqlite:///x.db"), "sqlite:///x.db");
        assert!(!redact("mysql://root:p%40ss@h:3306/x?ssl=1").contains("p%40ss"));
        assert_eq!(
            redact("postgresql://h/db?user=u&password=secret"),
            "postgresql://h/db?user=u&password=***"
        );
        assert_eq!(redact("postgresql://u@h/db"), "postgresql://u@h/db");
    }
}
