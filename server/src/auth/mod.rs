//! MLflow's basic-auth app (`mlflow server --app-name basic-auth`): the ini settings
//! ([`config`]), werkzeug password hashes ([`hash`]), the auth database in MLflow's schema
//! ([`store`]), permission levels and their resolution ([`permissions`]), which permission
//! each route needs ([`rules`]) and the failed-login limit ([`limiter`]). The HTTP glue is in
//! `http::auth`.

pub mod cache;
pub mod config;
pub mod hash;
pub mod limiter;
pub mod permissions;
pub mod rules;
pub mod store;

use std::sync::Arc;

pub use config::AuthConfig;
use permissions::{Grant, Key, Permission, Requirement};
use store::{AuthStore, User};

use crate::error::{MlflowError, Result};

/// MLflow's minimum password length (mlflow.utils.validation._validate_password).
pub const MIN_PASSWORD_LEN: usize = 12;
/// The admin password older MLflow versions shipped (GHSA-gq3w-7jj3-x7gr): never accepted for
/// an admin, neither to create one nor to log in.
const LEGACY_ADMIN_PASSWORD: &str = "password1234";

/// Everything the auth layer needs at run time.
#[derive(Clone)]
pub struct Auth {
    pub config: Arc<AuthConfig>,
    pub store: AuthStore,
    pub limiter: Arc<limiter::Limiter>,
    pub logins: Arc<cache::LoginCache>,
}

/// A password that MLflow's policy refuses.
pub fn check_password_policy(password: &str) -> Result<()> {
    if password.chars().count() < MIN_PASSWORD_LEN {
        return Err(MlflowError::invalid(format!(
            "Password must be at least {MIN_PASSWORD_LEN} characters."
        )));
    }
    Ok(())
}

/// Hashes off the async runtime: scrypt takes tens of milliseconds and 32 MB by design.
pub async fn hash_password(password: &str) -> Result<String> {
    let password = password.to_string();
    tokio::task::spawn_blocking(move || hash::generate(&password))
        .await
        .map_err(|e| MlflowError::internal(format!("password hashing failed: {e}")))?
        .map_err(|e| MlflowError::internal(e.to_string()))
}

async fn verify_password(stored: &str, password: &str) -> bool {
    let (stored, password) = (stored.to_string(), password.to_string());
    tokio::task::spawn_blocking(move || hash::verify(&stored, &password))
        .await
        .unwrap_or(false)
}

impl Auth {
    /// Opens the auth database and creates the admin user on first start, as MLflow does.
    pub async fn start(config: AuthConfig) -> anyhow::Result<Self> {
        let store = AuthStore::open(&config.database_uri).await?;
        let auth = Auth {
            limiter: Arc::new(limiter::Limiter::new(config.max_failed_logins)),
            logins: Arc::new(cache::LoginCache::new(
                config.auth_cache_ttl_seconds,
                config.auth_cache_max_size,
            )),
            config: Arc::new(config),
            store,
        };
        auth.bootstrap_admin().await?;
        Ok(auth)
    }

    async fn bootstrap_admin(&self) -> anyhow::Result<()> {
        let config = &self.config;
        let username = config.admin_username.as_deref().ok_or_else(|| {
            anyhow::anyhow!(
                "basic auth needs a username for the admin user, but none is configured. Set \
                 MLFLOW_AUTH_ADMIN_USERNAME or admin_username in the file named by \
                 MLFLOW_AUTH_CONFIG_PATH, and restart the server."
            )
        })?;
        let existing = self.store.find_user(username).await?;
        let password = config.admin_password.as_deref();
        match existing {
            None => {
                let password = valid_bootstrap_password(username, password)?;
                let hash = hash_password(password).await?;
                match self.store.create_user(username, &hash, true).await {
                    Ok(_) => tracing::info!(username, "created the admin user"),
                    // Another server process on the same database created it first.
                    Err(e) if e.code == crate::error::ErrorCode::ResourceAlreadyExists => {}
                    Err(e) => return Err(e.into()),
                }
            }
            Some(user) => {
                if verify_password(&user.password_hash, LEGACY_ADMIN_PASSWORD).await {
                    match password.filter(|p| *p != LEGACY_ADMIN_PASSWORD) {
                        Some(p) => {
                            let p = valid_bootstrap_password(username, Some(p))?;
                            self.store
                                .update_password(username, &hash_password(p).await?)
                                .await?;
                            tracing::warn!(
                                username,
                                "replaced the admin's insecure default password with the \
                                 configured one; unset MLFLOW_AUTH_ADMIN_PASSWORD now"
                            );
                        }
                        None => tracing::warn!(
                            username,
                            "the admin user still has the insecure default password of old \
                             MLflow versions; logins with it are refused. Set \
                             MLFLOW_AUTH_ADMIN_PASSWORD and restart to rotate it"
                        ),
                    }
                }
            }
        }
        Ok(())
    }

    /// The user whose credentials these are, or `None`.
    pub async fn authenticate(&self, username: &str, password: &str) -> Result<Option<User>> {
        if let Some(user) = self.logins.get(username, password) {
            return Ok(Some(user));
        }
        let Some(user) = self.store.find_user(username).await? else {
            // Spend the same time as for a real user, so timing does not tell names apart.
            let _ = verify_password(DUMMY_HASH, password).await;
            return Ok(None);
        };
        if !verify_password(&user.password_hash, password).await {
            return Ok(None);
        }
        if user.is_admin && password == LEGACY_ADMIN_PASSWORD {
            tracing::warn!(
                username,
                "refused an admin login with the insecure default password of old MLflow versions"
            );
            return Ok(None);
        }
        self.logins.put(username, password, &user);
        Ok(Some(user))
    }

    /// The grants of `user` on the given resource types (plus workspace-wide ones).
    pub async fn grants(&self, user: &User, types: &[&str]) -> Result<Vec<Grant>> {
        self.store.grants(user.id, types).await
    }

    /// Whether `user` meets every requirement (admins always do).
    pub async fn allows(&self, user: &User, requirements: &[Requirement]) -> Result<bool> {
        if user.is_admin || requirements.is_empty() {
            return Ok(true);
        }
        let mut types: Vec<&str> = Vec::new();
        for r in requirements {
            types.push(r.key.resource_type);
            if let Some(f) = &r.fallback {
                types.push(f.resource_type);
            }
        }
        let grants = self.grants(user, &types).await?;
        Ok(permissions::satisfied(
            &grants,
            requirements,
            self.config.default_permission,
        ))
    }

    /// The permission that governs `key` for `user` (admins: MANAGE).
    pub async fn permission(&self, user: &User, key: &Key) -> Result<Permission> {
        if user.is_admin {
            return Ok(Permission::Manage);
        }
        let grants = self.grants(user, &[key.resource_type]).await?;
        Ok(permissions::effective(
            &grants,
            key,
            self.config.default_permission,
        ))
    }
}

/// Verified against when the user does not exist: it costs one scrypt run and matches nothing.
const DUMMY_HASH: &str = "scrypt:32768:8:1$timing-only$-";

fn valid_bootstrap_password<'a>(
    username: &str,
    password: Option<&'a str>,
) -> anyhow::Result<&'a str> {
    let Some(password) = password.filter(|p| !p.is_empty()) else {
        anyhow::bail!(
            "basic auth needs a password to create the admin user '{username}', but none is \
             configured; there is no default. Set MLFLOW_AUTH_ADMIN_PASSWORD (for example in the \
             service's environment file) or admin_password in the file named by \
             MLFLOW_AUTH_CONFIG_PATH, and restart the server."
        );
    };
    if password == LEGACY_ADMIN_PASSWORD {
        anyhow::bail!(
            "refusing the insecure default password of old MLflow versions for the admin user \
             '{username}'; set MLFLOW_AUTH_ADMIN_PASSWORD to another password"
        );
    }
    check_password_policy(password).map_err(|e| {
        anyhow::anyhow!(
            "the configured password for the admin user '{username}' is invalid: {} Set \
             MLFLOW_AUTH_ADMIN_PASSWORD or admin_password to a valid password.",
            e.message
        )
    })?;
    Ok(password)
}
