//! Validation and planning: parses the playbook, expands presets with type-checked
//! parameters, evaluates `when`, renders every template and builds the actions. Every problem
//! is collected; nothing touches the system here.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use serde_saphyr::Spanned;
use tera::Context;

use crate::actions::{Action, Builder};
use crate::diag::{Diag, Diags, Loc, Source};
use crate::facts::{Facts, Sudo};
use crate::params::{self, extra_value};
use crate::presets::Library;
use crate::spec::{action_keys, ActionSpec, StepKind, StepSpec, Tpl};
use crate::spec::{Render, Renderer};
use crate::template::eval_bool;

/// One planned step.
pub struct Task {
    pub name: String,
    /// `file:line:col` of the step definition.
    pub origin: String,
    /// `file:line:col` of the playbook step that called the preset, for preset steps.
    pub called_from: Option<String>,
    pub r#become: bool,
    pub tags: Vec<String>,
    /// The action key (`file`, `service`, ...).
    pub kind: &'static str,
    pub action: Action,
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
    let text = std::fs::read_to_string(path)
        .map_err(|e| Diags::one(Diag::plain(format!("cannot read {}: {e}", path.display()))))?;
    let source = Source::new(path.display().to_string(), text);
    let steps: Vec<Spanned<StepSpec>> = crate::yaml::parse(&source).map_err(|d| {
        let d = if d.message.contains("expected a sequence")
            || d.message.contains("invalid type") && d.loc.line <= 1
        {
            d.with_help("a playbook is a YAML list of steps, e.g.\n- preset: mlflow")
        } else {
            d
        };
        Diags::one(d)
    })?;
    Ok((source, steps))
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

/// Validates the step shape: exactly one of `preset`, `vars` or an action key.
fn check_shape(step: &StepSpec, source: &Arc<Source>, loc: Loc, diags: &mut Diags) -> bool {
    match &step.does[..] {
        [kind] => {
            if step.with.is_some() && !matches!(kind, StepKind::Preset(_)) {
                diags.push(Diag::at(source, loc, "`with:` belongs to a `preset:` step"));
                return false;
            }
            true
        }
        [] => {
            let keys: Vec<&str> = ["preset", "vars"]
                .into_iter()
                .chain(action_keys().iter().copied())
                .collect();
            diags.push(
                Diag::at(source, loc, "step has no action")
                    .with_help(format!("add one of: {}", keys.join(", "))),
            );
            false
        }
        several => {
            let keys: Vec<&str> = several.iter().map(StepKind::key).collect();
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

/// Where an action step is expanded: from the playbook, or from a preset it calls.
struct Scope<'a> {
    preset: Option<&'a str>,
    r#become: bool,
    tags: &'a [String],
    called_from: Option<String>,
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

    /// Builds one action step: renders its spec in `ctx`, then builds the action.
    fn action_step(
        &mut self,
        spanned: &Spanned<StepSpec>,
        (kind, spec): (&'static str, &ActionSpec),
        source: &Arc<Source>,
        ctx: &Context,
        scope: &Scope<'_>,
    ) {
        let loc = Loc::from_saphyr(&spanned.referenced);
        let step = &spanned.value;
        let name = self.step_name(step, ctx, source);
        let mut spec = spec.clone();
        spec.render(&mut Renderer {
            ctx,
            source: source.clone(),
            diags: &mut self.diags,
        });
        let mut b = Builder {
            source: source.clone(),
            diags: &mut self.diags,
            ctx,
            library: self.inputs.library,
            preset: scope.preset,
            base: &self.base_dir,
            secrets: &mut self.plan.secrets,
        };
        let Some(action) = Action::build(&spec, &mut b) else {
            return;
        };
        let label = name.unwrap_or_else(|| format!("{kind}: {}", action.summary()));
        let name = match scope.preset {
            Some(p) => format!("{p} : {label}"),
            None => label,
        };
        let mut tags = scope.tags.to_vec();
        tags.extend(step.tags.clone().unwrap_or_default());
        self.plan.tasks.push(Task {
            name,
            origin: origin(source, loc),
            called_from: scope.called_from.clone(),
            r#become: scope.r#become || step.r#become.as_ref().is_some_and(|b| b.value),
            tags,
            kind,
            action,
        });
    }

    /// Expands one `preset:` step.
    fn preset_step(
        &mut self,
        spanned: &Spanned<StepSpec>,
        preset_name: &Tpl,
        source: &Arc<Source>,
        ctx: &Context,
    ) {
        let step = &spanned.value;
        let loc = Loc::from_saphyr(&spanned.referenced);
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
        let before = self.diags.len();
        let checked = {
            let mut merged = with_ctx.clone();
            merged.extend(pctx.clone());
            merged.insert("privileged", &privileged);
            let c = params::check(
                def,
                with,
                self.inputs.extra,
                &call,
                (&with_ctx, &mut merged),
                &mut self.diags,
            );
            pctx = merged;
            c
        };
        self.plan.secrets.extend(checked.secrets.iter().cloned());
        if self.diags.len() > before {
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
        let tags = step.tags.clone().unwrap_or_default();
        let scope = Scope {
            preset: Some(&def.name),
            r#become,
            tags: &tags,
            called_from: Some(origin(source, loc)),
        };
        for inner in &def.steps {
            let iloc = Loc::from_saphyr(&inner.referenced);
            if !check_shape(&inner.value, &loaded.source, iloc, &mut self.diags) {
                continue;
            }
            let [StepKind::Action(kind, spec)] = &inner.value.does[..] else {
                self.diags.push(Diag::at(
                    &loaded.source,
                    iloc,
                    "preset steps cannot use `preset:` or `vars:`",
                ));
                continue;
            };
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
            self.action_step(inner, (*kind, spec), &loaded.source, &pctx, &scope);
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
            if !inputs.facts.is_root && inputs.facts.sudo == Sudo::Missing {
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
        match &step.does[..] {
            [StepKind::Vars(vars)] => {
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
            }
            [StepKind::Preset(name)] => w.preset_step(spanned, name, source, &ctx),
            [StepKind::Action(kind, spec)] => {
                let scope = Scope {
                    preset: None,
                    r#become: step.r#become.as_ref().is_some_and(|b| b.value),
                    tags: &[],
                    called_from: None,
                };
                w.action_step(spanned, (*kind, spec), source, &ctx, &scope);
            }
            // check_shape reported it.
            _ => {}
        }
    }
    if w.diags.is_empty() {
        Ok(w.plan)
    } else {
        w.diags.sort_by_location();
        w.diags.secrets(w.plan.secrets);
        Err(w.diags)
    }
}
