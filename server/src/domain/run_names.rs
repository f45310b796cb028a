//! Generated run names in MLflow's `adjective-noun-NN` style.

const ADJECTIVES: &[&str] = &[
    "agile",
    "amber",
    "ancient",
    "azure",
    "bold",
    "brave",
    "bright",
    "brisk",
    "calm",
    "clever",
    "cosmic",
    "crisp",
    "daring",
    "dusty",
    "eager",
    "earnest",
    "fancy",
    "fearless",
    "gentle",
    "gilded",
    "glad",
    "golden",
    "grand",
    "hidden",
    "honest",
    "humble",
    "icy",
    "jolly",
    "keen",
    "kind",
    "lively",
    "lucky",
    "mellow",
    "merry",
    "mighty",
    "misty",
    "nimble",
    "noble",
    "polite",
    "proud",
    "quick",
    "quiet",
    "rapid",
    "rustic",
    "shiny",
    "silent",
    "silver",
    "sleek",
    "smooth",
    "snowy",
    "sparkling",
    "steady",
    "sunny",
    "swift",
    "tender",
    "tidy",
    "vivid",
    "wandering",
    "warm",
    "wise",
    "witty",
    "zesty",
];

const NOUNS: &[&str] = &[
    "badger", "bear", "bee", "bird", "bison", "boar", "cat", "cheetah", "colt", "crab", "crane",
    "deer", "dolphin", "dove", "eagle", "eel", "falcon", "ferret", "finch", "fox", "frog",
    "gazelle", "goat", "goose", "hare", "hawk", "heron", "horse", "hound", "ibis", "jay", "koala",
    "lark", "lemur", "lion", "lynx", "mole", "moose", "moth", "newt", "otter", "owl", "panda",
    "perch", "pike", "quail", "ram", "raven", "robin", "seal", "shark", "sloth", "snail",
    "sparrow", "squid", "stag", "swan", "tern", "toad", "trout", "whale", "wolf", "wren", "yak",
];

/// Returns a fresh random name such as `brave-otter-42`.
pub fn generate() -> String {
    let adjective = ADJECTIVES[fastrand::usize(..ADJECTIVES.len())];
    let noun = NOUNS[fastrand::usize(..NOUNS.len())];
    format!("{adjective}-{noun}-{}", fastrand::u32(0..1000))
}

#[cfg(test)]
mod tests {
    #[test]
    fn names_have_three_parts() {
        for _ in 0..100 {
            let name = super::generate();
            let parts: Vec<_> = name.split('-').collect();
            assert_eq!(parts.len(), 3, "{name}");
            assert!(parts[2].parse::<u32>().is_ok());
        }
    }
}
