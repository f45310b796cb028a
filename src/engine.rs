//! Runs a plan: for each task `check`, then (unless `--check`) `apply` what changes; stops at
//! the first failure; reports every step and the recap. Returns the exit code.

use std::time::Instant;

use crate::actions::{Check, Cx};
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
        let kind = task.action.kind();
        let (status, message, diff) = match task.action.check(&cx) {
            Err(e) => (Status::Failed, e, None),
            Ok(Check::Ok(m)) => (Status::Ok, m, None),
            Ok(Check::Skip(m)) => (Status::Skipped, m, None),
            Ok(Check::Change(change)) => {
                let diff = change.diff.clone();
                if opts.check_mode {
                    cx.changed.extend(change.paths.iter().cloned());
                    if task.action.counts_as_change() {
                        cx.predicted = true;
                        (Status::Changed, format!("would {}", change.msg), diff)
                    } else {
                        (Status::Ok, format!("would run: {}", change.msg), None)
                    }
                } else {
                    match task.action.apply(&cx, &change) {
                        Ok(m) if task.action.counts_as_change() => {
                            cx.changed.extend(change.paths.iter().cloned());
                            cx.predicted = true;
                            (Status::Changed, m, diff)
                        }
                        Ok(m) => (Status::Ok, m, None),
                        Err(e) => (Status::Failed, e, diff),
                    }
                }
            }
        };
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
            action: kind,
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
