//! String and file templating with tera, and the `Render` pass that fills every [`Tpl`] of a
//! step in place, collecting located errors.

use std::collections::BTreeMap;
use std::sync::Arc;

use tera::{Context, Tera};

use crate::diag::{Diag, Diags, Source};
use crate::spec::*;

/// Formats a tera error with its causes on one line.
fn tera_message(e: &tera::Error) -> String {
    let mut msg = e.to_string();
    let mut cur: Option<&dyn std::error::Error> = std::error::Error::source(e);
    while let Some(c) = cur {
        msg.push_str(": ");
        msg.push_str(&c.to_string());
        cur = c.source();
    }
    msg.replace(
        "Failed to render '__tera_one_off'",
        "cannot render template",
    )
    .replace("Failed to parse '__tera_one_off'", "invalid template")
}

/// Renders a template string.
pub fn render_str(raw: &str, ctx: &Context) -> Result<String, String> {
    if !raw.contains("{{") && !raw.contains("{%") {
        return Ok(raw.to_string());
    }
    Tera::one_off(raw, ctx, false).map_err(|e| tera_message(&e))
}

/// Evaluates a `when:` condition: `service`, `state == "absent"` or `{{ ... }}`. An
/// undefined variable or a result that is not a boolean is an error, never a silent false.
pub fn eval_bool(raw: &str, ctx: &Context) -> Result<bool, String> {
    let trimmed = raw.trim();
    let expr = trimmed
        .strip_prefix("{{")
        .and_then(|s| s.strip_suffix("}}"))
        .unwrap_or(trimmed)
        .trim();
    match render_str(&format!("{{{{ {expr} }}}}"), ctx)?.trim() {
        "true" => Ok(true),
        "false" => Ok(false),
        other => Err(format!(
            "the condition `{expr}` must be true or false, but it is `{other}`"
        )),
    }
}

/// Renders a named file template (the `template:` action, units, env files).
pub fn render_file(name: &str, text: &str, ctx: &Context) -> Result<String, String> {
    let mut tera = Tera::default();
    tera.autoescape_on(vec![]);
    tera.add_raw_template(name, text)
        .map_err(|e| tera_message(&e))?;
    tera.render(name, ctx).map_err(|e| tera_message(&e))
}

/// Renders every [`Tpl`] of a spec, reporting errors at the template's position.
pub struct Renderer<'a> {
    pub ctx: &'a Context,
    pub source: Arc<Source>,
    pub diags: &'a mut Diags,
}

impl Renderer<'_> {
    pub fn tpl(&mut self, t: &mut Tpl) {
        if !t.is_template() {
            return;
        }
        match render_str(&t.raw, self.ctx) {
            Ok(v) => t.value = v,
            Err(e) => self.diags.push(Diag::at(&self.source, t.loc, e)),
        }
    }
}

/// Types whose templates can be rendered in place.
pub trait Render {
    fn render(&mut self, r: &mut Renderer<'_>);
}

impl Render for Tpl {
    fn render(&mut self, r: &mut Renderer<'_>) {
        r.tpl(self);
    }
}

impl<T: Render> Render for Option<T> {
    fn render(&mut self, r: &mut Renderer<'_>) {
        if let Some(v) = self {
            v.render(r);
        }
    }
}

impl<T: Render> Render for Vec<T> {
    fn render(&mut self, r: &mut Renderer<'_>) {
        for v in self {
            v.render(r);
        }
    }
}

impl<T: Render> Render for BTreeMap<String, T> {
    fn render(&mut self, r: &mut Renderer<'_>) {
        for v in self.values_mut() {
            v.render(r);
        }
    }
}

macro_rules! render_fields {
    ($($ty:ty { $($field:ident),* $(,)? })*) => {$(
        impl Render for $ty {
            fn render(&mut self, r: &mut Renderer<'_>) {
                $( self.$field.render(r); )*
            }
        }
    )*};
}

render_fields! {
    PackageSpec { name, names, state }
    FileSpec { path, state, mode, owner, group, content }
    TemplateSpec { src, dest, mode, owner, group }
    CopySpec { src, url, sha256, dest, mode, owner, group, force, state, version_check }
    VersionCheckSpec { args, prefix, expect }
    UserSpec { name, state, system, home, shell }
    ServiceSpec { name, state, enabled, manager, unit, exec, exec_args_json, env_file, user, workdir, pid_file, log_file, watch, health_url, health_timeout }
    CommandSpec { argv, creates, removes, unless, changed_when, cwd, env }
    AssertSpec { http, command, file }
    HttpAssertSpec { url, method, headers, body, contains, json, timeout, within }
    JsonCheckSpec { path }
    CommandAssertSpec { argv, contains }
    FileAssertSpec { path, mode, contains }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn when_forms() {
        let mut ctx = Context::new();
        ctx.insert("service", &true);
        ctx.insert("state", "absent");
        assert!(eval_bool("service", &ctx).unwrap());
        assert!(eval_bool("{{ state == 'absent' }}", &ctx).unwrap());
        assert!(!eval_bool("not service", &ctx).unwrap());
        assert!(eval_bool("nope", &ctx).is_err());
    }

    #[test]
    fn undefined_variable_is_an_error() {
        let ctx = Context::new();
        let e = render_str("{{ missing }}", &ctx).unwrap_err();
        assert!(e.contains("missing"), "{e}");
    }
}
