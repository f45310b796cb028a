//! MLflow 3.17.2's permission levels and how grants decide a request (mlflow/server/auth's
//! permissions.py and requirements.py, with workspaces off: every grant lives in the
//! `default` workspace). Pure: grants in, decisions out.

/// A permission level; the order is MLflow's priority (DENY lowest).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Permission {
    Deny,
    NoPermissions,
    Read,
    Use,
    Edit,
    Manage,
}

impl Permission {
    pub fn parse(name: &str) -> Option<Self> {
        Some(match name {
            "DENY" => Self::Deny,
            "NO_PERMISSIONS" => Self::NoPermissions,
            "READ" => Self::Read,
            "USE" => Self::Use,
            "EDIT" => Self::Edit,
            "MANAGE" => Self::Manage,
            _ => return None,
        })
    }

    pub fn name(self) -> &'static str {
        match self {
            Self::Deny => "DENY",
            Self::NoPermissions => "NO_PERMISSIONS",
            Self::Read => "READ",
            Self::Use => "USE",
            Self::Edit => "EDIT",
            Self::Manage => "MANAGE",
        }
    }

    /// Whether this level allows `action`.
    pub fn allows(self, action: Action) -> bool {
        match action {
            Action::NotDenied => self != Self::Deny,
            Action::Read => self >= Self::Read,
            Action::Use => self >= Self::Use,
            Action::Update => self >= Self::Edit,
            Action::Delete | Action::Manage => self == Self::Manage,
        }
    }

    /// A positive grant never resolves below the configured default; DENY and
    /// NO_PERMISSIONS are vetoes and stay as they are.
    fn floored(self, default: Permission) -> Permission {
        match self {
            Self::Deny | Self::NoPermissions => self,
            positive => positive.max(default),
        }
    }
}

/// What an operation needs of a permission.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    Read,
    Use,
    Update,
    Delete,
    Manage,
    /// Only that the key is not explicitly denied (creating a run, a trace, ...).
    NotDenied,
}

pub const WORKSPACE: &str = "workspace";
pub const EXPERIMENT: &str = "experiment";
pub const REGISTERED_MODEL: &str = "registered_model";
pub const PROMPT: &str = "prompt";

/// Resource types MLflow accepts in grants, and whether a grant may name one resource
/// (`true`) or only `*` (`false`).
pub const RESOURCE_TYPES: &[(&str, bool)] = &[
    (WORKSPACE, false),
    (EXPERIMENT, true),
    (REGISTERED_MODEL, true),
    (PROMPT, true),
    ("scorer", true),
    ("gateway_secret", true),
    ("gateway_endpoint", true),
    ("gateway_model_definition", true),
    ("mcp_server", true),
    ("run", false),
    ("trace", false),
    ("assessment", false),
    ("logged_model", false),
    ("review_queue", false),
    ("registered_model_version", false),
    ("prompt_version", false),
    ("scorer_version", false),
    ("mcp_server_version", false),
];

/// One row of `role_permissions` that applies to the user.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Grant {
    pub resource_type: String,
    pub pattern: String,
    pub permission: String,
}

/// A key a requirement is looked up at: a resource type and an id (or `*`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Key {
    pub resource_type: &'static str,
    pub id: String,
}

impl Key {
    pub fn new(resource_type: &'static str, id: impl Into<String>) -> Self {
        Key {
            resource_type,
            id: id.into(),
        }
    }
    pub fn any(resource_type: &'static str) -> Self {
        Key::new(resource_type, "*")
    }
}

/// What an operation requires: `action` at `key`, or, when the user holds no grant of that
/// key's type, at the fallback key (the container) instead.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Requirement {
    pub key: Key,
    pub action: Action,
    pub fallback: Option<Key>,
}

impl Requirement {
    pub fn on(key: Key, action: Action) -> Self {
        Requirement {
            key,
            action,
            fallback: None,
        }
    }
    pub fn inherited(key: Key, action: Action, from: Key) -> Self {
        Requirement {
            key,
            action,
            fallback: Some(from),
        }
    }
}

fn pattern_matches(resource_type: &str, pattern: &str, id: &str) -> bool {
    pattern == "*"
        || RESOURCE_TYPES
            .iter()
            .any(|(t, by_id)| *t == resource_type && *by_id && pattern == id)
}

/// The grants at one key: DENY if any denies, else the highest, else `None` (silent).
pub fn fold(grants: &[Grant], key: &Key) -> Option<Permission> {
    let mut best: Option<Permission> = None;
    for grant in grants {
        if grant.resource_type != key.resource_type
            || !pattern_matches(key.resource_type, &grant.pattern, &key.id)
        {
            continue;
        }
        match Permission::parse(&grant.permission) {
            Some(Permission::Deny) => return Some(Permission::Deny),
            Some(p) => best = Some(best.map_or(p, |b| b.max(p))),
            None => {}
        }
    }
    best
}

/// A `(workspace, *, MANAGE)` grant: a workspace admin, whom nothing restricts.
pub fn is_workspace_admin(grants: &[Grant]) -> bool {
    grants
        .iter()
        .any(|g| g.resource_type == WORKSPACE && g.pattern == "*" && g.permission == "MANAGE")
}

/// The permission that governs `key` alone (the answer of get-user-permission).
pub fn effective(grants: &[Grant], key: &Key, default: Permission) -> Permission {
    if is_workspace_admin(grants) {
        return Permission::Manage;
    }
    fold(grants, key).map_or(default, |p| p.floored(default))
}

/// Whether every requirement is met: the first key holding any grant decides it (a grant on
/// the sub-resource overrides the container's, both ways), else the default permission.
pub fn satisfied(grants: &[Grant], requirements: &[Requirement], default: Permission) -> bool {
    if is_workspace_admin(grants) {
        return true;
    }
    requirements.iter().all(|req| {
        let governing = std::iter::once(&req.key)
            .chain(req.fallback.as_ref())
            .find_map(|key| fold(grants, key));
        governing
            .map_or(default, |p| p.floored(default))
            .allows(req.action)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn grant(t: &str, pattern: &str, p: &str) -> Grant {
        Grant {
            resource_type: t.into(),
            pattern: pattern.into(),
            permission: p.into(),
        }
    }

    #[test]
    fn levels_and_actions() {
        assert!(Permission::Read.allows(Action::Read));
        assert!(!Permission::Read.allows(Action::Update));
        assert!(Permission::Edit.allows(Action::Update));
        assert!(!Permission::Edit.allows(Action::Delete));
        assert!(Permission::Manage.allows(Action::Manage));
        assert!(!Permission::NoPermissions.allows(Action::Read));
        assert!(Permission::NoPermissions.allows(Action::NotDenied));
        assert!(!Permission::Deny.allows(Action::NotDenied));
    }

    #[test]
    fn grants_fold_with_deny_winning_and_default_as_floor() {
        let grants = vec![
            grant(EXPERIMENT, "1", "EDIT"),
            grant(EXPERIMENT, "2", "READ"),
            grant(EXPERIMENT, "3", "DENY"),
            grant(EXPERIMENT, "*", "READ"),
        ];
        let exp = |id: &str| Key::new(EXPERIMENT, id);
        assert_eq!(
            effective(&grants, &exp("1"), Permission::Read),
            Permission::Edit
        );
        assert_eq!(
            effective(&grants, &exp("3"), Permission::Manage),
            Permission::Deny
        );
        // A READ grant under an EDIT default reads as EDIT (MLflow's floor).
        assert_eq!(
            effective(&grants, &exp("2"), Permission::Edit),
            Permission::Edit
        );
        assert_eq!(
            effective(&[], &exp("9"), Permission::NoPermissions),
            Permission::NoPermissions
        );
        // Run grants are wildcard only: a run id never matches a per-id pattern.
        assert_eq!(
            fold(&[grant("run", "abc", "MANAGE")], &Key::new("run", "abc")),
            None
        );
    }

    #[test]
    fn a_sub_resource_grant_overrides_the_container() {
        let update_run = [Requirement::inherited(
            Key::any("run"),
            Action::Update,
            Key::new(EXPERIMENT, "1"),
        )];
        let exp_edit = vec![grant(EXPERIMENT, "1", "EDIT")];
        assert!(satisfied(&exp_edit, &update_run, Permission::Read));
        let mut run_read = exp_edit.clone();
        run_read.push(grant("run", "*", "READ"));
        assert!(!satisfied(&run_read, &update_run, Permission::Read));
        assert!(!satisfied(&[], &update_run, Permission::Read));
        let admin = vec![
            grant(WORKSPACE, "*", "MANAGE"),
            grant(EXPERIMENT, "1", "DENY"),
        ];
        assert!(satisfied(&admin, &update_run, Permission::NoPermissions));
    }
}
