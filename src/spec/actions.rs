//! What each action takes, as written in YAML. [`specs!`] declares a spec's struct and its
//! [`Render`] impl from one field list, so a field cannot be added without being rendered.

use std::collections::BTreeMap;

use serde::Deserialize;
use serde_saphyr::Spanned;

use super::render::{Render, Renderer};
use super::Tpl;

/// Declares spec structs (unknown keys rejected) with a [`Render`] impl over every field.
macro_rules! specs {
    ($($(#[$m:meta])* $name:ident { $($field:ident: $ty:ty),* $(,)? })*) => {$(
        $(#[$m])*
        #[derive(Debug, Clone, Deserialize)]
        #[serde(deny_unknown_fields)]
        pub struct $name { $(pub $field: $ty),* }

        impl Render for $name {
            fn render(&mut self, r: &mut Renderer<'_>) {
                $(self.$field.render(r);)*
            }
        }
    )*};
}

specs! {
    /// `package: {name | names, state: present|absent}`.
    PackageSpec { name: Option<Tpl>, names: Option<Vec<Tpl>>, state: Option<Tpl> }

    /// `file: {path, state: file|directory|absent, mode, owner, group, content}`.
    FileSpec {
        path: Tpl, state: Option<Tpl>, mode: Option<Tpl>,
        owner: Option<Tpl>, group: Option<Tpl>, content: Option<Tpl>,
    }

    /// `template: {src, dest, mode, owner, group}`: renders a tera file template.
    TemplateSpec { src: Tpl, dest: Tpl, mode: Option<Tpl>, owner: Option<Tpl>, group: Option<Tpl> }

    /// `copy: {src | url + sha256, dest, mode, owner, group, force, state, version_check}`.
    CopySpec {
        src: Option<Tpl>, url: Option<Tpl>, sha256: Option<Tpl>, dest: Tpl,
        mode: Option<Tpl>, owner: Option<Tpl>, group: Option<Tpl>,
        force: Option<Tpl>, state: Option<Tpl>, version_check: Option<VersionCheckSpec>,
    }

    /// How to recognise "our" binary: run it with `args`; its first output line must start
    /// with `prefix` (and equal `expect` when given).
    VersionCheckSpec { args: Vec<Tpl>, prefix: Tpl, expect: Option<Tpl> }

    /// `user: {name, state, system, home, shell}`.
    UserSpec {
        name: Tpl, state: Option<Tpl>, system: Option<Tpl>, home: Option<Tpl>, shell: Option<Tpl>,
    }

    /// `service:` a long-running process managed by systemd, launchd or the built-in
    /// supervisor: `exec` (argv, extended by the JSON list `exec_args_json` renders to), its `env_file`, `user` and
    /// `workdir`, the supervisor's `pid_file` and `log_file`, the files whose change restarts
    /// it (`watch`), and the URL that says it is up (`health_url`, `health_timeout`).
    ServiceSpec {
        name: Tpl, state: Option<Tpl>, enabled: Option<Tpl>, manager: Option<Tpl>,
        unit: Option<Tpl>, exec: Option<Vec<Tpl>>, exec_args_json: Option<Tpl>,
        env_file: Option<Tpl>, user: Option<Tpl>, workdir: Option<Tpl>,
        pid_file: Option<Tpl>, log_file: Option<Tpl>, watch: Option<Vec<Tpl>>,
        health_url: Option<Tpl>, health_timeout: Option<Tpl>,
    }

    /// `command: {argv, argv_json, creates, removes, unless, changed_when, cwd, env}`;
    /// `argv_json` renders to a JSON list of strings appended to `argv`.
    CommandSpec {
        argv: Vec<Tpl>, argv_json: Option<Tpl>, creates: Option<Tpl>, removes: Option<Tpl>,
        unless: Option<Vec<Tpl>>, changed_when: Option<Tpl>, cwd: Option<Tpl>,
        env: Option<BTreeMap<String, Tpl>>,
    }

    /// `assert:` exactly one of `http`, `command`, `file`.
    AssertSpec {
        http: Option<Box<HttpAssertSpec>>, command: Option<CommandAssertSpec>,
        file: Option<FileAssertSpec>,
    }

    /// `assert: http:` a request and what its answer must be. `timeout` is per request;
    /// `within` keeps retrying until that much time has passed (default 30s). `ca` (a PEM
    /// file) is the only trusted root for https, `validate_certs: false` trusts anything;
    /// `username` and `password` send basic auth.
    HttpAssertSpec {
        url: Tpl, method: Option<Tpl>, headers: Option<BTreeMap<String, Tpl>>,
        body: Option<Tpl>, status: Option<Spanned<StatusSpec>>, contains: Option<Tpl>,
        json: Option<JsonCheckSpec>, timeout: Option<Tpl>, within: Option<Tpl>,
        ca: Option<Tpl>, validate_certs: Option<Tpl>, username: Option<Tpl>,
        password: Option<Tpl>,
    }

    /// `json: {path: "/a/0/name", equals: VALUE}` (RFC 6901 JSON pointer).
    JsonCheckSpec { path: Tpl, equals: Option<serde_json::Value>, exists: Option<bool> }

    /// `assert: command:` a program's exit code and output.
    CommandAssertSpec { argv: Vec<Tpl>, exit_code: Option<i32>, contains: Option<Tpl> }

    /// `assert: file:` a path's existence, mode and content.
    FileAssertSpec { path: Tpl, exists: Option<bool>, mode: Option<Tpl>, contains: Option<Tpl> }
}

/// An HTTP status: one code or a list of accepted codes.
#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
pub enum StatusSpec {
    One(u16),
    Many(Vec<u16>),
}
