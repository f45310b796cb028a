//! Runs a plan: each task checks, then (unless `--check`) applies what it planned; stops at
//! the first failure; reports every step and the recap. Returns the exit code.

use std::time::Instant;

use crate::actions::{Cx, Outcome};
use crate::facts::Facts;
use crate::plan::Plan;
use crate::report::{Recap, Reporter, Status, StepEvent};
use crate::system::Sys;

/// Options of one run.
pub struct RunOptions<'a> {
    pub check_mode: bool,
    pub tags: &'a [String],
    pub progress: bool,
}

/// Applies (or with `--check`, predicts) the plan. Exit code 0, or 1 when a step failed.
pub fn run(plan: &Plan, facts: &Facts, opts: &RunOptions<'_>, out: &Reporter) -> i32 {
    let started = Instant::now();
    let mut cx = Cx {
        facts,
        sys: Sys::default(),
        check_mode: opts.check_mode,
        changed: Default::default(),
        predicted: false,
        progress: opts.progress,
    };
    let mut recap = Recap::default();
    for (i, task) in plan.tasks.iter().enumerate() {
        if !opts.tags.is_empty() && !task.tags.iter().any(|t| opts.tags.contains(t)) {
            continue;
        }
        let t0 = Instant::now();
        cx.sys = Sys {
            sudo: task.r#become && !facts.is_root,
        };
        let Outcome {
            status,
            message,
            diff,
        } = task.action.run(&mut cx);
        match status {
            Status::Ok => recap.ok += 1,
            Status::Changed => recap.changed += 1,
            Status::Skipped => recap.skipped += 1,
            Status::Failed => recap.failed += 1,
        }
        let origin = match &task.called_from {
            Some(c) => format!("{} (called from {c})", task.origin),
            None => task.origin.clone(),
        };
        out.step(&StepEvent {
            index: i + 1,
            name: &task.name,
            action: task.kind,
            origin: &origin,
            status,
            message: &message,
            diff: diff.as_deref(),
            seconds: t0.elapsed().as_secs_f64(),
        });
        if status == Status::Failed {
            if out.format == crate::report::Format::Text {
                out.note(&format!("         at {origin}\nstopping: a step failed"));
            }
            break;
        }
    }
    out.recap(&recap, opts.check_mode, started.elapsed().as_secs_f64());
    if recap.failed > 0 {
        1
    } else {
        0
    }
}
