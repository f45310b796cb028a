//! `preset`: applies YAML playbooks and presets (see `preset --help`).
fn main() {
    std::process::exit(preset::run());
}
