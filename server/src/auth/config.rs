//! The basic-auth settings: MLflow's ini file (`MLFLOW_AUTH_CONFIG_PATH`, section `[mlflow]`)
//! with the same keys and defaults, and the `MLFLOW_AUTH_ADMIN_USERNAME` /
//! `MLFLOW_AUTH_ADMIN_PASSWORD` variables, which win when set (even empty). There is no
//! default admin password.

use super::permissions::Permission;
use crate::config::ConfigError;

/// MLflow's only built-in authorization function, the one this server implements.
pub const DEFAULT_AUTHORIZATION_FUNCTION: &str =
    "mlflow.server.auth:authenticate_request_basic_auth";

/// Validated auth settings.
#[derive(Clone)]
pub struct AuthConfig {
    pub default_permission: Permission,
    pub database_uri: String,
    pub admin_username: Option<String>,
    pub admin_password: Option<String>,
    /// Failed logins from one client within a minute before it is answered 429.
    pub max_failed_logins: u32,
    /// MLflow's login cache: seconds a successful login is remembered (0: off) and entries.
    pub auth_cache_ttl_seconds: u64,
    pub auth_cache_max_size: usize,
}

impl std::fmt::Debug for AuthConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AuthConfig")
            .field("default_permission", &self.default_permission)
            .field(
                "database_uri",
                &crate::store::redact_uri(&self.database_uri),
            )
            .field("admin_username", &self.admin_username)
            .field(
                "admin_password",
                &self.admin_password.as_ref().map(|_| "***"),
            )
            .finish()
    }
}

impl AuthConfig {
    /// Reads the file named by `MLFLOW_AUTH_CONFIG_PATH`, or MLflow's shipped defaults.
    pub fn from_env() -> Result<Self, ConfigError> {
        let env = |name: &str| std::env::var(name).ok();
        let text = match env("MLFLOW_AUTH_CONFIG_PATH").filter(|p| !p.is_empty()) {
            Some(path) => std::fs::read_to_string(&path).map_err(|e| {
                ConfigError(format!("cannot read MLFLOW_AUTH_CONFIG_PATH {path}: {e}"))
            })?,
            None => SHIPPED_DEFAULTS.to_string(),
        };
        Self::parse(
            &text,
            env("MLFLOW_AUTH_ADMIN_USERNAME"),
            env("MLFLOW_AUTH_ADMIN_PASSWORD"),
            env("MLFLOW_AUTH_MAX_FAILED_LOGINS"),
        )
    }

    fn parse(
        text: &str,
        env_username: Option<String>,
        env_password: Option<String>,
        env_max_failed: Option<String>,
    ) -> Result<Self, ConfigError> {
        let values = mlflow_section(text);
        let get = |key: &str| {
            values
                .iter()
                .rev()
                .find(|(k, _)| k == key)
                .map(|(_, v)| v.clone())
        };
        let required = |key: &str| {
            get(key).ok_or_else(|| {
                ConfigError(format!(
                    "the auth configuration has no '{key}' in its [mlflow] section"
                ))
            })
        };
        let permission = required("default_permission")?;
        let default_permission = Permission::parse(&permission)
            .filter(|p| *p != Permission::Deny)
            .ok_or_else(|| {
                ConfigError(format!(
                    "default_permission must be READ, USE, EDIT, MANAGE or NO_PERMISSIONS; got \
                     '{permission}'"
                ))
            })?;
        if let Some(function) = get("authorization_function") {
            if function != DEFAULT_AUTHORIZATION_FUNCTION {
                return Err(ConfigError(format!(
                    "authorization_function '{function}' is Python code this server cannot \
                     run; only {DEFAULT_AUTHORIZATION_FUNCTION} (HTTP basic auth) is supported"
                )));
            }
        }
        let non_empty = |v: Option<String>| v.filter(|s| !s.is_empty());
        let max_failed_logins = match env_max_failed.filter(|s| !s.is_empty()) {
            None => DEFAULT_MAX_FAILED_LOGINS,
            Some(v) => v.trim().parse().map_err(|_| {
                ConfigError(format!(
                    "MLFLOW_AUTH_MAX_FAILED_LOGINS must be a whole number; got '{v}'"
                ))
            })?,
        };
        let number = |key: &str, default: u64| match get(key) {
            None => Ok(default),
            Some(v) => v
                .parse::<u64>()
                .map_err(|_| ConfigError(format!("{key} must be a whole number; got '{v}'"))),
        };
        Ok(AuthConfig {
            auth_cache_ttl_seconds: number("auth_cache_ttl_seconds", 0)?,
            auth_cache_max_size: number("auth_cache_max_size", 10_000)? as usize,
            default_permission,
            database_uri: required("database_uri")?,
            admin_username: non_empty(env_username.or_else(|| get("admin_username"))),
            admin_password: non_empty(env_password.or_else(|| get("admin_password"))),
            max_failed_logins,
        })
    }
}

const DEFAULT_MAX_FAILED_LOGINS: u32 = 10;

/// MLflow's basic_auth.ini as shipped, minus the password it no longer has.
const SHIPPED_DEFAULTS: &str = "[mlflow]\ndefault_permission = READ\n\
     database_uri = sqlite:///basic_auth.db\nadmin_username = admin\n";

/// The `key = value` (or `key: value`) pairs of the `[mlflow]` section, as Python's
/// configparser reads them: keys lower-cased, `#`/`;` comment lines skipped, values trimmed.
fn mlflow_section(text: &str) -> Vec<(String, String)> {
    let mut in_section = false;
    let mut out = Vec::new();
    for line in text.lines() {
        let trimmed = line.trim();
        if trimmed.is_empty() || trimmed.starts_with('#') || trimmed.starts_with(';') {
            continue;
        }
        if let Some(name) = trimmed.strip_prefix('[').and_then(|s| s.strip_suffix(']')) {
            in_section = name.trim() == "mlflow";
            continue;
        }
        if !in_section {
            continue;
        }
        let split = trimmed.find(['=', ':']);
        if let Some(i) = split {
            let (k, v) = trimmed.split_at(i);
            out.push((k.trim().to_ascii_lowercase(), v[1..].trim().to_string()));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const INI: &str = "# comment\n[other]\ndefault_permission = MANAGE\n[mlflow]\n\
        default_permission = EDIT\nDatabase_URI = postgresql://u:p@h/auth\n\
        admin_username: root\n; admin_password = x\n";

    #[test]
    fn reads_the_mlflow_section_and_env_wins() {
        let c = AuthConfig::parse(INI, None, None, None).unwrap();
        assert_eq!(c.default_permission, Permission::Edit);
        assert_eq!(c.database_uri, "postgresql://u:p@h/auth");
        assert_eq!(c.admin_username.as_deref(), Some("root"));
        assert_eq!(c.admin_password, None);
        assert!(!format!("{c:?}").contains(":p@"));
        let c = AuthConfig::parse(INI, Some("boss".into()), Some("a-long-secret".into()), None)
            .unwrap();
        assert_eq!(c.admin_username.as_deref(), Some("boss"));
        assert_eq!(c.admin_password.as_deref(), Some("a-long-secret"));
        // A set but empty variable wins over the file and means "none".
        let c = AuthConfig::parse(INI, Some(String::new()), None, None).unwrap();
        assert_eq!(c.admin_username, None);
    }

    #[test]
    fn refuses_what_cannot_work() {
        let bad = |ini: &str| AuthConfig::parse(ini, None, None, None).unwrap_err().0;
        assert!(bad("[mlflow]\ndatabase_uri = sqlite:///a.db\n").contains("default_permission"));
        assert!(bad("[mlflow]\ndefault_permission = ALL\ndatabase_uri = x\n").contains("ALL"));
        assert!(
            bad("[mlflow]\ndefault_permission = READ\ndatabase_uri = x\n\
             authorization_function = my.module:check\n")
            .contains("my.module")
        );
        let shipped = AuthConfig::parse(SHIPPED_DEFAULTS, None, None, None).unwrap();
        assert_eq!(shipped.admin_password, None);
        assert_eq!(shipped.default_permission, Permission::Read);
    }
}
