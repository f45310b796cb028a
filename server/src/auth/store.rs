//! The basic-auth database in MLflow 3.17.2's schema (`users`, `roles`, `role_permissions`,
//! `user_role_assignments`, the legacy per-resource tables, `alembic_version_auth` at
//! f1a2b3c4d5e6). A user's own grants hang off a hidden role `__user_<id>__` in the `default`
//! workspace, exactly as MLflow stores them, so either server reads the other's grants.

use sqlx::AnyPool;

use super::permissions::Grant;
use crate::error::{ErrorCode, MlflowError, Result};
use crate::store::sql::{get_i64, get_str, is_unique_violation, Dialect, Sql};
use crate::store::{write_with, OpenError, StoreOptions, StoreUri};

/// The alembic head of MLflow 3.17.2's auth migrations.
pub const AUTH_SCHEMA_REVISION: &str = "f1a2b3c4d5e6";
const WORKSPACE: &str = "default";
/// Tables that still reference users by foreign key (MLflow keeps them for rollback).
const LEGACY_TABLES: [&str; 7] = [
    "experiment_permissions",
    "registered_model_permissions",
    "scorer_permissions",
    "gateway_secret_permissions",
    "gateway_endpoint_permissions",
    "gateway_model_definition_permissions",
    "workspace_permissions",
];
const SQLITE_SCHEMA: &str = include_str!("schema/sqlite.sql");
const POSTGRES_SCHEMA: &str = include_str!("schema/postgres.sql");
const MYSQL_SCHEMA: &str = include_str!("schema/mysql.sql");
const SCHEMA_LOCK_KEY: i64 = 0x6d6c_6175_7468;

/// A row of `users`.
#[derive(Debug, Clone)]
pub struct User {
    pub id: i64,
    pub username: String,
    pub password_hash: String,
    pub is_admin: bool,
}

/// One grant of one of a user's roles, as MLflow's permissions listing shows it.
#[derive(Debug, Clone, serde::Serialize)]
pub struct RoleGrant {
    pub role_id: i64,
    pub role_name: String,
    pub workspace: String,
    pub resource_type: String,
    pub resource_pattern: String,
    pub permission: String,
}

/// The auth database.
#[derive(Clone)]
pub struct AuthStore {
    dialect: Dialect,
    writer: AnyPool,
    reader: AnyPool,
}

impl AuthStore {
    /// Opens the database at `uri`, creating MLflow's auth schema in an empty one and
    /// refusing one at another revision (left untouched).
    pub async fn open(uri: &str) -> Result<Self, OpenError> {
        sqlx::any::install_default_drivers();
        let parsed = StoreUri::parse(uri)
            .map_err(|e| OpenError::BadUri(format!("auth database_uri: {e}")))?;
        let options = StoreOptions {
            uri: uri.to_string(),
            default_artifact_root: String::new(),
            max_connections: 4,
            pool_size: Some(4),
        };
        let (writer, reader) = crate::store::pool::connect_pools(&parsed, &options)
            .await
            .map_err(|e| OpenError::Database {
                uri: crate::store::redact_uri(uri),
                message: e.to_string(),
            })?;
        let store = AuthStore {
            dialect: parsed.dialect(),
            writer,
            reader,
        };
        store.ensure_schema(uri).await?;
        Ok(store)
    }

    async fn ensure_schema(&self, uri: &str) -> Result<(), OpenError> {
        let mut conn = self.writer.acquire().await?;
        match self.dialect {
            Dialect::Sqlite => sqlx::query("BEGIN IMMEDIATE").execute(&mut *conn).await?,
            Dialect::Postgres => {
                sqlx::query("BEGIN").execute(&mut *conn).await?;
                sqlx::query(&format!("SELECT pg_advisory_xact_lock({SCHEMA_LOCK_KEY})"))
                    .execute(&mut *conn)
                    .await?
            }
            Dialect::Mysql => {
                sqlx::query("SELECT GET_LOCK(LEFT(CONCAT('mlflow-auth-', DATABASE()), 64), 120)")
                    .execute(&mut *conn)
                    .await?
            }
        };
        let result = self.check_or_create(&mut conn, uri).await;
        let end = match (self.dialect, result.is_ok()) {
            (Dialect::Mysql, _) => {
                "SELECT RELEASE_LOCK(LEFT(CONCAT('mlflow-auth-', DATABASE()), 64))"
            }
            (_, true) => "COMMIT",
            (_, false) => "ROLLBACK",
        };
        sqlx::query(end).execute(&mut *conn).await?;
        result
    }

    async fn check_or_create(
        &self,
        conn: &mut sqlx::AnyConnection,
        uri: &str,
    ) -> Result<(), OpenError> {
        let tables = crate::store::schema::table_names(conn, self.dialect).await?;
        let what = crate::store::redact_uri(uri);
        if tables.is_empty() {
            let schema = match self.dialect {
                Dialect::Sqlite => SQLITE_SCHEMA,
                Dialect::Postgres => POSTGRES_SCHEMA,
                Dialect::Mysql => MYSQL_SCHEMA,
            };
            for stmt in schema
                .split("\n\n")
                .map(str::trim)
                .filter(|s| !s.is_empty() && !s.lines().all(|l| l.starts_with("--")))
            {
                sqlx::raw_sql(stmt).execute(&mut *conn).await?;
            }
            sqlx::query(&format!(
                "INSERT INTO alembic_version_auth (version_num) VALUES ('{AUTH_SCHEMA_REVISION}')"
            ))
            .execute(&mut *conn)
            .await?;
            tracing::info!(
                revision = AUTH_SCHEMA_REVISION,
                "created the auth database schema"
            );
            return Ok(());
        }
        if !tables.iter().any(|t| t == "alembic_version_auth") {
            return Err(OpenError::Schema(format!(
                "The auth database {what} holds tables but no MLflow auth schema version \
                 (alembic_version_auth). It was not modified. If it comes from an MLflow \
                 older than 3.6, start the Python `mlflow server --app-name basic-auth` \
                 3.17.2 on it once to migrate it; otherwise point database_uri at an empty \
                 database."
            )));
        }
        let revision = sqlx::query("SELECT version_num FROM alembic_version_auth")
            .fetch_optional(&mut *conn)
            .await?
            .and_then(|r| get_str(&r, "version_num"));
        if revision.as_deref() != Some(AUTH_SCHEMA_REVISION) {
            return Err(OpenError::Schema(format!(
                "The auth database {what} is at revision '{}', but this server reads and \
                 writes '{AUTH_SCHEMA_REVISION}' (MLflow 3.17.2). It was not modified. Migrate \
                 it by starting the Python `mlflow server --app-name basic-auth` 3.17.2 on it \
                 once (after a backup).",
                revision.unwrap_or_default()
            )));
        }
        Ok(())
    }

    fn sql(&self) -> Sql {
        Sql::new(self.dialect)
    }

    /// One write statement, begun, committed and retried like every write.
    async fn write_statement(&self, sql: &Sql) -> Result<()> {
        write_with(&self.writer, self.dialect, |tx, _| {
            Box::pin(async move {
                sql.query().execute(tx).await?;
                Ok(())
            })
        })
        .await
    }

    pub async fn close(&self) {
        self.writer.close().await;
        self.reader.close().await;
    }

    /// The user named `username`, if any.
    pub async fn find_user(&self, username: &str) -> Result<Option<User>> {
        let mut sql = self.sql();
        sql.push(
            "SELECT id, username, password_hash, CASE WHEN is_admin THEN 1 ELSE 0 END \
             AS is_admin FROM users WHERE username = ",
        )
        .bind(username);
        let row = sql.query().fetch_optional(&self.reader).await?;
        Ok(row.map(|r| User {
            id: get_i64(&r, "id").unwrap_or_default(),
            username: get_str(&r, "username").unwrap_or_default(),
            password_hash: get_str(&r, "password_hash").unwrap_or_default(),
            is_admin: get_i64(&r, "is_admin") == Some(1),
        }))
    }

    /// The user named `username`, or MLflow's not-found error.
    pub async fn user(&self, username: &str) -> Result<User> {
        self.find_user(username).await?.ok_or_else(|| {
            MlflowError::not_found(format!("User with username={username} not found"))
        })
    }

    pub async fn list_users(&self) -> Result<Vec<User>> {
        let sql = {
            let mut s = self.sql();
            s.push(
                "SELECT id, username, CASE WHEN is_admin THEN 1 ELSE 0 END AS is_admin FROM users \
                 ORDER BY id",
            );
            s
        };
        let rows = sql.query().fetch_all(&self.reader).await?;
        Ok(rows
            .iter()
            .map(|r| User {
                id: get_i64(r, "id").unwrap_or_default(),
                username: get_str(r, "username").unwrap_or_default(),
                password_hash: String::new(),
                is_admin: get_i64(r, "is_admin") == Some(1),
            })
            .collect())
    }

    /// Inserts a user whose password is already hashed.
    pub async fn create_user(&self, username: &str, hash: &str, is_admin: bool) -> Result<User> {
        let id = write_with(&self.writer, self.dialect, |tx, _| {
            Box::pin(async move {
                let mut sql = self.sql();
                sql.push("INSERT INTO users (username, password_hash, is_admin) VALUES (")
                    .bind(username)
                    .push(", ")
                    .bind(hash)
                    .push(", ")
                    .bind(is_admin)
                    .push(")");
                sql.insert_returning_id("id", tx).await.map_err(|e| {
                    if is_unique_violation(&e) {
                        MlflowError::already_exists(format!(
                            "User (username={username}) already exists."
                        ))
                    } else {
                        e.into()
                    }
                })
            })
        })
        .await?;
        Ok(User {
            id: id.unwrap_or_default(),
            username: username.to_string(),
            password_hash: hash.to_string(),
            is_admin,
        })
    }

    pub async fn update_password(&self, username: &str, hash: &str) -> Result<()> {
        let mut sql = self.sql();
        sql.push("UPDATE users SET password_hash = ")
            .bind(hash)
            .push(" WHERE username = ")
            .bind(username);
        self.update_one(sql, username).await
    }

    pub async fn update_admin(&self, username: &str, is_admin: bool) -> Result<()> {
        let mut sql = self.sql();
        sql.push("UPDATE users SET is_admin = ")
            .bind(is_admin)
            .push(" WHERE username = ")
            .bind(username);
        self.update_one(sql, username).await
    }

    async fn update_one(&self, sql: Sql, username: &str) -> Result<()> {
        // MySQL counts only changed rows, so an unchanged value must not read as "no user".
        self.user(username).await?;
        self.write_statement(&sql).await
    }

    /// Deletes a user with their own role, its grants and assignments, and their legacy rows.
    pub async fn delete_user(&self, username: &str) -> Result<()> {
        let user = self.user(username).await?;
        let role = format!("__user_{}__", user.id);
        let role = &role;
        write_with(&self.writer, self.dialect, |tx, _| {
            Box::pin(async move {
                let mut statements: Vec<Sql> = Vec::new();
                for table in ["role_permissions", "user_role_assignments"] {
                    let mut s = self.sql();
                    s.push(&format!(
                        "DELETE FROM {table} WHERE role_id IN (SELECT id FROM roles WHERE name = "
                    ))
                    .bind(role.as_str())
                    .push(")");
                    statements.push(s);
                }
                let mut s = self.sql();
                s.push("DELETE FROM user_role_assignments WHERE user_id = ")
                    .bind(user.id);
                statements.push(s);
                let mut s = self.sql();
                s.push("DELETE FROM roles WHERE name = ")
                    .bind(role.as_str());
                statements.push(s);
                for table in LEGACY_TABLES.iter().chain(&["users"]) {
                    let column = if *table == "users" { "id" } else { "user_id" };
                    let mut s = self.sql();
                    s.push(&format!("DELETE FROM {table} WHERE {column} = "))
                        .bind(user.id);
                    statements.push(s);
                }
                for s in &statements {
                    s.query().execute(&mut *tx).await?;
                }
                Ok(())
            })
        })
        .await
    }

    /// Every grant of the user's roles in the default workspace, of `types` or workspace-wide.
    pub async fn grants(&self, user_id: i64, types: &[&str]) -> Result<Vec<Grant>> {
        let mut sql = self.sql();
        sql.push(
            "SELECT rp.resource_type, rp.resource_pattern, rp.permission \
             FROM role_permissions rp JOIN roles r ON r.id = rp.role_id \
             JOIN user_role_assignments a ON a.role_id = r.id WHERE a.user_id = ",
        )
        .bind(user_id)
        .push(" AND r.workspace = ")
        .bind(WORKSPACE)
        .push(" AND rp.resource_type IN ")
        .bind_list(
            types
                .iter()
                .copied()
                .chain(std::iter::once(super::permissions::WORKSPACE)),
        );
        let rows = sql.query().fetch_all(&self.reader).await?;
        Ok(rows
            .iter()
            .map(|r| Grant {
                resource_type: get_str(r, "resource_type").unwrap_or_default(),
                pattern: get_str(r, "resource_pattern").unwrap_or_default(),
                permission: get_str(r, "permission").unwrap_or_default(),
            })
            .collect())
    }

    /// Every grant of every role of the user, with the role: `(role_id, role_name, workspace,
    /// resource_type, resource_pattern, permission)`.
    pub async fn role_grants(&self, user_id: i64) -> Result<Vec<RoleGrant>> {
        let mut sql = self.sql();
        sql.push(
            "SELECT r.id, r.name, r.workspace, rp.resource_type, rp.resource_pattern, \
             rp.permission FROM role_permissions rp JOIN roles r ON r.id = rp.role_id \
             JOIN user_role_assignments a ON a.role_id = r.id WHERE a.user_id = ",
        )
        .bind(user_id)
        .push(" ORDER BY r.id, rp.id");
        let rows = sql.query().fetch_all(&self.reader).await?;
        Ok(rows
            .iter()
            .map(|r| RoleGrant {
                role_id: get_i64(r, "id").unwrap_or_default(),
                role_name: get_str(r, "name").unwrap_or_default(),
                workspace: get_str(r, "workspace").unwrap_or_default(),
                resource_type: get_str(r, "resource_type").unwrap_or_default(),
                resource_pattern: get_str(r, "resource_pattern").unwrap_or_default(),
                permission: get_str(r, "permission").unwrap_or_default(),
            })
            .collect())
    }

    /// The id of the user's own role in the default workspace, created (and assigned) when
    /// `create` and missing.
    async fn own_role(
        &self,
        conn: &mut sqlx::AnyConnection,
        user_id: i64,
        create: bool,
    ) -> Result<Option<i64>> {
        let name = format!("__user_{user_id}__");
        let find = |d| {
            let mut s = Sql::new(d);
            s.push("SELECT id FROM roles WHERE workspace = ")
                .bind(WORKSPACE)
                .push(" AND name = ")
                .bind(name.as_str());
            s
        };
        let existing = find(self.dialect)
            .query()
            .fetch_optional(&mut *conn)
            .await?;
        let role_id = match existing.and_then(|r| get_i64(&r, "id")) {
            Some(id) => id,
            None if !create => return Ok(None),
            None => {
                let mut s = self.sql();
                s.push("INSERT INTO roles (name, workspace, description) VALUES (")
                    .bind(name.as_str())
                    .push(", ")
                    .bind(WORKSPACE)
                    .push(", NULL)");
                s.insert_returning_id("id", &mut *conn)
                    .await?
                    .ok_or_else(|| MlflowError::internal("no id for the new role"))?
            }
        };
        let mut s = self.sql();
        s.push("SELECT user_id FROM user_role_assignments WHERE role_id = ")
            .bind(role_id);
        let assigned: Vec<i64> = s
            .query()
            .fetch_all(&mut *conn)
            .await?
            .iter()
            .filter_map(|r| get_i64(r, "user_id"))
            .collect();
        if assigned.iter().any(|u| *u != user_id) {
            return Err(MlflowError::invalid(format!(
                "Role '{name}' in workspace '{WORKSPACE}' collides with the reserved \
                 '__user_<id>__' namespace but is assigned to another user."
            )));
        }
        if assigned.is_empty() && create {
            let mut s = self.sql();
            s.push("INSERT INTO user_role_assignments (user_id, role_id) VALUES (")
                .bind(user_id)
                .push(", ")
                .bind(role_id)
                .push(")");
            s.query().execute(&mut *conn).await?;
        }
        Ok(Some(role_id))
    }

    /// Adds a grant to the user's own role. With `replace` an existing grant on the same
    /// resource takes the new level; without, it is an error (MLflow's grant API).
    pub async fn grant(
        &self,
        user: &User,
        resource_type: &str,
        pattern: &str,
        permission: &str,
        replace: bool,
    ) -> Result<()> {
        write_with(&self.writer, self.dialect, |tx, _| {
            Box::pin(async move {
                let role_id = self
                    .own_role(&mut *tx, user.id, true)
                    .await?
                    .unwrap_or_default();
                let mut s = self.sql();
                s.push("SELECT id FROM role_permissions WHERE role_id = ")
                    .bind(role_id)
                    .push(" AND resource_type = ")
                    .bind(resource_type)
                    .push(" AND resource_pattern = ")
                    .bind(pattern);
                let existing = s.query().fetch_optional(&mut *tx).await?;
                let mut s = self.sql();
                match existing.and_then(|r| get_i64(&r, "id")) {
                    Some(_) if !replace => {
                        return Err(MlflowError::already_exists(format!(
                            "Permission for user={} on resource_type={resource_type}, \
                     resource_id={pattern} already exists.",
                            user.username
                        )))
                    }
                    Some(id) => {
                        s.push("UPDATE role_permissions SET permission = ")
                            .bind(permission)
                            .push(" WHERE id = ")
                            .bind(id);
                    }
                    None => {
                        s.push(
                    "INSERT INTO role_permissions (role_id, resource_type, resource_pattern, \
                     permission) VALUES (",
                )
                .bind(role_id)
                .push(", ")
                .bind(resource_type)
                .push(", ")
                .bind(pattern)
                .push(", ")
                .bind(permission)
                .push(")");
                    }
                }
                match s.query().execute(&mut *tx).await {
                    Ok(_) => {}
                    Err(e) if is_unique_violation(&e) => {
                        return Err(MlflowError::already_exists(format!(
                            "Permission for user={} on resource_type={resource_type}, \
                     resource_id={pattern} already exists.",
                            user.username
                        )))
                    }
                    Err(e) => return Err(e.into()),
                }
                Ok(())
            })
        })
        .await
    }

    /// Removes one grant from the user's own role.
    pub async fn revoke(&self, user: &User, resource_type: &str, pattern: &str) -> Result<()> {
        write_with(&self.writer, self.dialect, |tx, _| {
            Box::pin(async move {
                let role = self.own_role(&mut *tx, user.id, false).await?;
                let mut removed = 0;
                if let Some(role_id) = role {
                    let mut s = self.sql();
                    s.push("DELETE FROM role_permissions WHERE role_id = ")
                        .bind(role_id)
                        .push(" AND resource_type = ")
                        .bind(resource_type)
                        .push(" AND resource_pattern = ")
                        .bind(pattern);
                    removed = s.query().execute(&mut *tx).await?.rows_affected();
                }
                if removed == 0 {
                    return Err(MlflowError::new(
                        ErrorCode::ResourceDoesNotExist,
                        format!(
                            "Permission for user={} on resource_type={resource_type}, \
                     resource_id={pattern} not found.",
                            user.username
                        ),
                    ));
                }
                Ok(())
            })
        })
        .await
    }

    /// Drops (`to` = None) or renames every user's own grant on one resource, as MLflow does
    /// when a registered model is deleted or renamed.
    pub async fn retarget_grants(
        &self,
        resource_type: &str,
        pattern: &str,
        to: Option<&str>,
    ) -> Result<()> {
        // Users' own roles only (`__user_<id>__`), never roles an admin made.
        let mut s = self.sql();
        s.push("SELECT id, name FROM roles WHERE workspace = ")
            .bind(WORKSPACE);
        let own: Vec<i64> = s
            .query()
            .fetch_all(&self.reader)
            .await?
            .iter()
            .filter(|r| get_str(r, "name").is_some_and(|n| is_own_role_name(&n)))
            .filter_map(|r| get_i64(r, "id"))
            .collect();
        if own.is_empty() {
            return Ok(());
        }
        let mut s = self.sql();
        match to {
            None => s.push("DELETE FROM role_permissions"),
            Some(new) => s
                .push("UPDATE role_permissions SET resource_pattern = ")
                .bind(new),
        };
        s.push(" WHERE resource_type = ")
            .bind(resource_type)
            .push(" AND resource_pattern = ")
            .bind(pattern)
            .push(" AND role_id IN ")
            .bind_list(own);
        self.write_statement(&s).await
    }
}

/// MLflow's name for a user's own role: `__user_<digits>__`.
fn is_own_role_name(name: &str) -> bool {
    name.strip_prefix("__user_")
        .and_then(|rest| rest.strip_suffix("__"))
        .is_some_and(|id| !id.is_empty() && id.bytes().all(|b| b.is_ascii_digit()))
}
