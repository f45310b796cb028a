//! `preset`: the YAML playbook executor (see issue 3). Placeholder until it lands.
fn main() {
    eprintln!("preset: not implemented yet");
    std::process::exit(2);
}
