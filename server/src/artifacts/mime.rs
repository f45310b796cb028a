//! The `Content-Type` of a downloaded artifact, chosen as MLflow chooses it: text formats
//! that browsers would otherwise download or sniff (logs, configs, code, `MLmodel`,
//! `mlproject`) are `text/plain`, the rest by extension, unknown ones
//! `application/octet-stream`.

/// Extensions (and extension-less names) MLflow serves as `text/plain`; compared case-sensitively.
const TEXT: &[&str] = &[
    "txt",
    "log",
    "err",
    "cfg",
    "conf",
    "cnf",
    "cf",
    "ini",
    "properties",
    "prop",
    "hocon",
    "toml",
    "yaml",
    "yml",
    "xml",
    "json",
    "js",
    "py",
    "py3",
    "csv",
    "tsv",
    "md",
    "rst",
    "ipynb",
    "MLmodel",
    "mlproject",
];

/// The media type for a file named `file_name` (the last path segment).
pub fn mime_type(file_name: &str) -> String {
    let extension = match file_name.rsplit_once('.') {
        Some((stem, ext)) if !stem.is_empty() => ext,
        _ => file_name,
    };
    if TEXT.contains(&extension) {
        return "text/plain".to_string();
    }
    mime_guess::from_path(file_name)
        .first_or_octet_stream()
        .essence_str()
        .to_string()
}

#[cfg(test)]
mod tests {
    use super::mime_type;

    #[test]
    fn mlflow_text_types() {
        for name in [
            "a.txt",
            "MLmodel",
            "mlproject",
            "conda.yaml",
            "x.json",
            "r.py",
        ] {
            assert_eq!(mime_type(name), "text/plain", "{name}");
        }
        assert_eq!(mime_type("b.pkl"), "application/octet-stream");
        assert_eq!(mime_type("c.png"), "image/png");
        assert_eq!(mime_type("d.pdf"), "application/pdf");
        assert_eq!(mime_type("noext"), "application/octet-stream");
        // A dot file has no extension (Python's splitext), so ".log" is not a log file.
        assert_eq!(mime_type(".log"), "application/octet-stream");
        assert_eq!(mime_type("page.html"), "text/html");
    }
}
