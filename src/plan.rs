//! Validation and planning: parses the playbook, expands presets with type-checked
//! parameters, evaluates `when`, renders every template and builds the actions. Every problem
//! is collected; nothing touches the system here.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use serde_saphyr::Spanned;
use tera::Context;

use crate::actions::{self, Action, Builder};
use crate::diag::{Diag, Diags, Loc, Source};
use crate::facts::Facts;
use crate::params;
use crate::presets::Library;
use crate::spec::{StepSpec, Tpl, ACTION_KEYS};
use crate::template::{eval_bool, Render, Renderer};

/// One planned step.
pub struct Task {
    pub name: String,
    /// `file:line:col` of the step definition.
    pub origin: String,
    /// `file:line:col` of the playbook step that called the preset, for preset steps.
    pub called_from: Option<String>,
    pub r#become: bool,
    pub tags: Vec<String>,
    pub action: Box<dyn Action>,
}

/// A step left out because its `when` was false.
pub struct Skipped {
    pub name: String,
    pub origin: String,
}

/// The validated, expanded playbook.
#[derive(Default)]
pub struct Plan {
    pub tasks: Vec<Task>,
    pub skipped: Vec<Skipped>,
    pub secrets: Vec<String>,
}

/// What planning needs besides the playbook.
pub struct Inputs<'a> {
    pub library: &'a Library,
    pub facts: &'a Facts,
    /// `-e KEY=VALUE` pairs.
    pub extra: &'a [(String, String)],
    pub check_mode: bool,
}

/// Reads and parses a playbook file.
pub fn load(path: &Path) -> Result<(Arc<Source>, Vec<Spanned<StepSpec>>), Diags> {
    let text = std::fs::read_to_string(path).map_err(|e| {
        Diags(vec![Diag::plain(format!(
            "cannot read {}: {e}",
            path.display()
        ))])
    })?;
    let source = Source::new(path.display().to_string(), text);
    let steps: Vec<Spanned<StepSpec>> = crate::yaml::parse(&source).map_err(|d| {
        let d = if d.message.contains("expected a sequence")
            || d.message.contains("invalid type") && d.loc.line <= 1
        {
            d.with_help("a playbook is a YAML list of steps, e.g.\n- preset: mlflow")
        } else {
            d
        };
        Diags(vec![d])
    })?;
    Ok((source, steps))
}

/// Parses a `-e` value: true/false and integers are typed, a JSON list or mapping is parsed,
/// anything else is a string.
pub fn extra_value(v: &str) -> serde_json::Value {
    if v.starts_with('[') || v.starts_with('{') {
        if let Ok(j) = serde_json::from_str::<serde_json::Value>(v) {
            return j;
        }
    }
    match v {
        "true" => true.into(),
        "false" => false.into(),
        _ => v
            .parse::<i64>()
            .map(serde_json::Value::from)
            .unwrap_or_else(|_| v.into()),
    }
}

fn base_context(inputs: &Inputs<'_>, privileged: bool) -> Context {
    let mut ctx = Context::new();
    ctx.insert("facts", inputs.facts);
    let env: std::collections::BTreeMap<String, String> = std::env::vars().collect();
    ctx.insert("env", &env);
    ctx.insert("privileged", &privileged);
    ctx.insert("check_mode", &inputs.check_mode);
    ctx
}

fn origin(source: &Source, loc: Loc) -> String {
    format!("{}:{}:{}", source.name, loc.line, loc.col)
}

/// Validates the step shape: exactly one action key.
fn check_shape(step: &StepSpec, source: &Arc<Source>, loc: Loc, diags: &mut Diags) -> bool {
    let keys = step.action_keys();
    match keys.len() {
        1 => {
            if step.with.is_some() && keys[0] != "preset" {
                diags.push(Diag::at(source, loc, "`with:` belongs to a `preset:` step"));
                return false;
            }
            true
        }
        0 => {
            diags.push(
                Diag::at(source, loc, "step has no action")
                    .with_help(format!("add one of: {}", ACTION_KEYS.join(", "))),
            );
            false
        }
        _ => {
            diags.push(
                Diag::at(
                    source,
                    loc,
                    format!(
                        "step has several actions ({}); a step does one thing",
                        keys.join(", ")
                    ),
                )
                .with_help("split it into several steps"),
            );
            false
        }
    }
}

struct Walker<'a> {
    inputs: &'a Inputs<'a>,
    base_dir: PathBuf,
    plan: Plan,
    diags: Diags,
}

impl Walker<'_> {
    /// Evaluates `when`; errors are reported and count as false.
    fn when(&mut self, when: &Option<Tpl>, ctx: &Context, source: &Arc<Source>) -> bool {
        let Some(w) = when else { return true };
        match eval_bool(&w.raw, ctx) {
            Ok(b) => b,
            Err(e) => {
                self.diags
                    .push(Diag::at(source, w.loc, format!("in `when`: {e}")));
                false
            }
        }
    }

    fn step_name(
        &mut self,
        step: &StepSpec,
        ctx: &Context,
        source: &Arc<Source>,
    ) -> Option<String> {
        let mut name = step.name.clone()?;
        Renderer {
            ctx,
            source: source.clone(),
            diags: &mut self.diags,
        }
        .tpl(&mut name);
        Some(name.value)
    }

    /// Builds one action step.
    #[allow(clippy::too_many_arguments)]
    fn action_step(
        &mut self,
        spanned: &Spanned<StepSpec>,
        source: &Arc<Source>,
        ctx: &Context,
        preset: Option<&str>,
        r#become: bool,
        tags: &[String],
        called_from: Option<String>,
    ) {
        let loc = Loc::from_saphyr(&spanned.referenced);
        let mut step = spanned.value.clone();
        let name = self.step_name(&step, ctx, source);
        {
            let mut r = Renderer {
                ctx,
                source: source.clone(),
                diags: &mut self.diags,
            };
            step.package.render(&mut r);
            step.file.render(&mut r);
            step.template.render(&mut r);
            step.copy.render(&mut r);
            step.user.render(&mut r);
            step.service.render(&mut r);
            step.command.render(&mut r);
            step.assert.render(&mut r);
            step.print.render(&mut r);
        }
        let mut b = Builder {
            source: source.clone(),
            diags: &mut self.diags,
            ctx,
            library: self.inputs.library,
            preset,
            base: &self.base_dir,
        };
        let Some(action) = actions::build(&step, &mut b) else {
            return;
        };
        let label = name.unwrap_or_else(|| format!("{}: {}", action.kind(), action.summary()));
        let name = match preset {
            Some(p) => format!("{p} : {label}"),
            None => label,
        };
        let mut all_tags = tags.to_vec();
        all_tags.extend(step.tags.clone().unwrap_or_default());
        self.plan.tasks.push(Task {
            name,
            origin: origin(source, loc),
            called_from,
            r#become: r#become || step.r#become.as_ref().is_some_and(|b| b.value),
            tags: all_tags,
            action,
        });
    }

    /// Expands one `preset:` step.
    fn preset_step(&mut self, spanned: &Spanned<StepSpec>, source: &Arc<Source>, ctx: &Context) {
        let step = &spanned.value;
        let loc = Loc::from_saphyr(&spanned.referenced);
        let Some(preset_name) = &step.preset else {
            return;
        };
        let loaded = match self.inputs.library.load(&preset_name.raw) {
            Ok(l) => l,
            Err(mut d) => {
                if d.source.is_none() {
                    d.source = Some(source.clone());
                    d.loc = preset_name.loc;
                }
                self.diags.push(d);
                return;
            }
        };
        let def = &loaded.def;
        let r#become = step.r#become.as_ref().is_some_and(|b| b.value);
        let privileged = self.inputs.facts.is_root || r#become;
        let mut pctx = base_context(self.inputs, privileged);
        // `with:` values may use the playbook's variables.
        let mut with_ctx = ctx.clone();
        with_ctx.insert("privileged", &privileged);
        let empty = Default::default();
        let with = step.with.as_ref().unwrap_or(&empty);
        let call = params::Call {
            source,
            loc: preset_name.loc,
        };
        // Defaults are rendered in the preset's context; given values in the playbook's.
        let before = self.diags.0.len();
        let checked = {
            let mut merged = with_ctx.clone();
            merged.extend(pctx.clone());
            merged.insert("privileged", &privileged);
            let c = params::check(
                def,
                with,
                self.inputs.extra,
                &call,
                &mut merged,
                &mut self.diags,
            );
            pctx = merged;
            c
        };
        self.plan.secrets.extend(checked.secrets.iter().cloned());
        if self.diags.0.len() > before {
            return;
        }
        for (k, v) in &checked.values {
            pctx.insert(k.as_str(), v);
        }
        pctx.insert("preset_name", &def.name);
        if let Some(vars) = &def.vars {
            for (k, t) in &vars.0 {
                let mut t = t.clone();
                Renderer {
                    ctx: &pctx,
                    source: loaded.source.clone(),
                    diags: &mut self.diags,
                }
                .tpl(&mut t);
                pctx.insert(k.as_str(), &t.value);
            }
        }
        let called_from = Some(origin(source, loc));
        let tags = step.tags.clone().unwrap_or_default();
        for inner in &def.steps {
            let iloc = Loc::from_saphyr(&inner.referenced);
            if !check_shape(&inner.value, &loaded.source, iloc, &mut self.diags) {
                continue;
            }
            if inner.value.preset.is_some() || inner.value.vars.is_some() {
                self.diags.push(Diag::at(
                    &loaded.source,
                    iloc,
                    "preset steps cannot use `preset:` or `vars:`",
                ));
                continue;
            }
            if !self.when(&inner.value.when, &pctx, &loaded.source) {
                let name = self
                    .step_name(&inner.value, &pctx, &loaded.source)
                    .unwrap_or_else(|| "step".into());
                self.plan.skipped.push(Skipped {
                    name: format!("{} : {name}", def.name),
                    origin: origin(&loaded.source, iloc),
                });
                continue;
            }
            self.action_step(
                inner,
                &loaded.source,
                &pctx,
                Some(&def.name),
                r#become,
                &tags,
                called_from.clone(),
            );
        }
    }
}

/// Validates and expands a parsed playbook into a [`Plan`].
pub fn build(
    source: &Arc<Source>,
    steps: &[Spanned<StepSpec>],
    playbook_dir: &Path,
    inputs: &Inputs<'_>,
) -> Result<Plan, Diags> {
    let mut w = Walker {
        inputs,
        base_dir: playbook_dir.to_path_buf(),
        plan: Plan::default(),
        diags: Diags::default(),
    };
    let mut ctx = base_context(inputs, inputs.facts.is_root);
    for (k, v) in inputs.extra {
        ctx.insert(k.as_str(), &extra_value(v));
    }
    if steps.is_empty() {
        w.diags.push(Diag::at(
            source,
            Loc::default(),
            "the playbook has no steps",
        ));
    }
    for spanned in steps {
        let step = &spanned.value;
        let loc = Loc::from_saphyr(&spanned.referenced);
        if !check_shape(step, source, loc, &mut w.diags) {
            continue;
        }
        if !w.when(&step.when, &ctx, source) {
            let name = w
                .step_name(step, &ctx, source)
                .unwrap_or_else(|| "step".into());
            w.plan.skipped.push(Skipped {
                name,
                origin: origin(source, loc),
            });
            continue;
        }
        if let Some(b) = step.r#become.as_ref().filter(|b| b.value) {
            if !inputs.facts.is_root && inputs.facts.sudo == "missing" {
                w.diags.push(
                    Diag::at(
                        source,
                        Loc::from_saphyr(&b.referenced),
                        "`become: true` needs root, but preset is not running as root and sudo is not installed",
                    )
                    .with_help("run preset as root, install sudo, or drop `become` for a user-level install"),
                );
                continue;
            }
        }
        if let Some(vars) = &step.vars {
            for (k, t) in &vars.0 {
                if inputs.extra.iter().any(|(ek, _)| ek == k) {
                    continue;
                }
                let mut t = t.clone();
                Renderer {
                    ctx: &ctx,
                    source: source.clone(),
                    diags: &mut w.diags,
                }
                .tpl(&mut t);
                ctx.insert(k.as_str(), &t.value);
            }
            continue;
        }
        if step.preset.is_some() {
            w.preset_step(spanned, source, &ctx);
            continue;
        }
        let r#become = step.r#become.as_ref().is_some_and(|b| b.value);
        let tags = Vec::new();
        w.action_step(spanned, source, &ctx, None, r#become, &tags, None);
    }
    if w.diags.is_empty() {
        Ok(w.plan)
    } else {
        w.diags.sort_by_location();
        Err(w.diags)
    }
}
