//! What each subcommand does: parse → validate → plan → apply → recap, and the exit codes
//! (0 success, 1 a step failed, 2 invalid input with nothing changed).

use std::path::Path;

use clap::Parser;
use serde_json::json;

use crate::cli::{Cli, Command, PlaybookArgs};
use crate::diag::Diags;
use crate::engine::{self, RunOptions};
use crate::facts::{self, Facts};
use crate::plan::{self, Inputs, Plan};
use crate::presets::{self, Library};
use crate::report::{Format, Masker, Reporter};

/// Exit code for invalid input.
pub const EXIT_INVALID: i32 = 2;

/// Entry point: parses arguments and runs the subcommand.
pub fn run() -> i32 {
    let cli = match Cli::try_parse() {
        Ok(c) => c,
        Err(e) => {
            let _ = e.print();
            return if e.use_stderr() { EXIT_INVALID } else { 0 };
        }
    };
    if !matches!(cli.command, Command::Apply(_)) {
        // Read-only commands end quietly when their reader goes away (`preset plan | head`);
        // apply keeps running and its reporter ignores a closed stdout.
        // SAFETY: setting a signal disposition before any thread is started.
        unsafe {
            libc::signal(libc::SIGPIPE, libc::SIG_DFL);
        }
    }
    // TLS for downloads and https asserts.
    let _ = rustls::crypto::ring::default_provider().install_default();
    let library = Library::new(cli.presets_dir.clone());
    match cli.command {
        Command::Apply(a) => {
            let facts = facts::gather();
            let plan = match build(&a.playbook, &library, &facts, a.check, a.format) {
                Ok(p) => p,
                Err(code) => return code,
            };
            let reporter = Reporter {
                format: a.format,
                show_diff: a.diff,
                verbose: a.verbose,
                masker: Masker::new(plan.secrets.clone()),
            };
            reporter.header(&format!(
                "{} {} on {} ({}, {}){}",
                if a.check { "checking" } else { "applying" },
                a.playbook.playbook.display(),
                facts.distro_name,
                facts
                    .package_manager
                    .map_or("no package manager", |pm| pm.name()),
                facts.init_text(),
                if a.check {
                    " — check mode, nothing will be changed"
                } else {
                    ""
                },
            ));
            if a.verbose {
                for s in &plan.skipped {
                    reporter.note(&format!(
                        "skip     {}  (when is false, {})",
                        s.name, s.origin
                    ));
                }
            }
            let progress =
                a.format == Format::Text && std::io::IsTerminal::is_terminal(&std::io::stderr());
            engine::run(
                &plan,
                &facts,
                &RunOptions {
                    check_mode: a.check,
                    tags: &a.tags,
                    progress,
                },
                &reporter,
            )
        }
        Command::Validate(p) => {
            let facts = facts::gather();
            match build(&p, &library, &facts, true, Format::Text) {
                Ok(plan) => {
                    println!(
                        "{}: valid ({} steps, {} skipped by `when`)",
                        p.playbook.display(),
                        plan.tasks.len(),
                        plan.skipped.len()
                    );
                    0
                }
                Err(code) => code,
            }
        }
        Command::Plan(a) => {
            let facts = facts::gather();
            let plan = match build(&a.playbook, &library, &facts, true, a.format) {
                Ok(p) => p,
                Err(code) => return code,
            };
            print_plan(&plan, a.format);
            0
        }
        Command::Facts(f) => {
            let facts = facts::gather();
            match f.format {
                Format::Json => println!(
                    "{}",
                    serde_json::to_string_pretty(&facts)
                        .unwrap_or_else(|e| format!("{{\"error\":\"{e}\"}}"))
                ),
                Format::Text => print!("{}", facts.to_text()),
            }
            0
        }
        Command::List => {
            for name in library.names() {
                match library.load(&name) {
                    Ok(l) => println!(
                        "{name:<12} {}",
                        l.def.description.lines().next().unwrap_or("")
                    ),
                    Err(d) => println!("{name:<12} (invalid: {})", d.message),
                }
            }
            0
        }
        Command::Show { name } => match library.load(&name) {
            Ok(l) => {
                print!("{}", presets::describe(&l.def));
                0
            }
            Err(d) => {
                eprint!("{}", d.render());
                EXIT_INVALID
            }
        },
    }
}

/// Parses, validates and plans; on errors prints them all and returns exit code 2.
fn build(
    p: &PlaybookArgs,
    library: &Library,
    facts: &Facts,
    check_mode: bool,
    format: Format,
) -> Result<Plan, i32> {
    let result = plan::load(&p.playbook).and_then(|(source, steps)| {
        let dir = p.playbook.parent().unwrap_or(Path::new("."));
        let dir = if dir.as_os_str().is_empty() {
            Path::new(".")
        } else {
            dir
        };
        plan::build(
            &source,
            &steps,
            dir,
            &Inputs {
                library,
                facts,
                extra: &p.extra,
                check_mode,
            },
        )
    });
    result.map_err(|diags| {
        report_errors(&diags, format);
        EXIT_INVALID
    })
}

fn report_errors(diags: &Diags, format: Format) {
    let masker = Masker::new(diags.secret_values().to_vec());
    match format {
        Format::Text => eprint!("{}", masker.mask(&diags.render())),
        Format::Json => {
            for d in diags.iter() {
                println!(
                    "{}",
                    json!({"event": "error", "location": d.location(), "message": masker.mask(&d.message), "help": d.help})
                );
            }
            println!(
                "{}",
                json!({"event": "recap", "ok": 0, "changed": 0, "skipped": 0, "failed": 0, "errors": diags.len()})
            );
        }
    }
}

fn print_plan(plan: &Plan, format: Format) {
    let masker = Masker::new(plan.secrets.clone());
    for (i, t) in plan.tasks.iter().enumerate() {
        let line = match format {
            Format::Json => json!({
                "index": i + 1,
                "name": masker.mask(&t.name),
                "action": t.kind,
                "summary": masker.mask(&t.action.summary()),
                "origin": t.origin,
                "called_from": t.called_from,
                "become": t.r#become,
            })
            .to_string(),
            Format::Text => format!(
                "{:>3}. {}\n     {}: {}\n     at {}{}{}",
                i + 1,
                masker.mask(&t.name),
                t.kind,
                masker.mask(&t.action.summary()),
                t.origin,
                t.called_from
                    .as_ref()
                    .map(|c| format!(" (called from {c})"))
                    .unwrap_or_default(),
                if t.r#become { ", become" } else { "" }
            ),
        };
        println!("{line}");
    }
    if format == Format::Text {
        for s in &plan.skipped {
            println!("  -  {} (skipped: when is false, {})", s.name, s.origin);
        }
    }
}
