//! String and file templating with tera: `{{ ... }}` in step values, `when:` conditions, file
//! templates, and preset's own functions and filters.

use tera::{Context, Tera};

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

/// A tera instance without autoescaping and with preset's functions.
fn engine() -> Tera {
    let mut tera = Tera::default();
    tera.autoescape_on(vec![]);
    tera.register_function("env_file_value", env_file_value);
    tera.register_filter("env_quote", env_quote);
    tera
}

/// `env_file_value(path=..., key=...)`: the value of `KEY=VALUE` in an environment file as it
/// is on disk now (so `state: absent` can name the store a server was installed with), or ""
/// when the file or the key is missing. Meant for messages: a URI's password and query are
/// masked.
fn env_file_value(
    args: &std::collections::HashMap<String, tera::Value>,
) -> tera::Result<tera::Value> {
    let arg = |name: &str| {
        args.get(name)
            .and_then(|v| v.as_str())
            .ok_or_else(|| tera::Error::msg(format!("env_file_value needs `{name}` (a string)")))
    };
    let (path, key) = (arg("path")?, arg("key")?);
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let value = crate::envfile::parse(&text).remove(key).unwrap_or_default();
    Ok(tera::Value::from(mask_uri(&value)))
}

/// `value | env_quote`: the value as it must follow `KEY=` in an environment file (see
/// [`crate::envfile::quote`]); a value with a line break is an error.
fn env_quote(
    value: &tera::Value,
    _: &std::collections::HashMap<String, tera::Value>,
) -> tera::Result<tera::Value> {
    let text = match value {
        tera::Value::String(s) => s.clone(),
        tera::Value::Null => String::new(),
        other => other.to_string(),
    };
    crate::envfile::quote(&text)
        .map(tera::Value::from)
        .ok_or_else(|| tera::Error::msg("a value in the environment file cannot hold a line break"))
}

/// `scheme://user:***@host/path?***` for a URI with a password or query; anything else as is.
fn mask_uri(value: &str) -> String {
    match url::Url::parse(value) {
        Ok(mut u) if u.password().is_some() || u.query().is_some() => {
            if u.password().is_some() {
                let _ = u.set_password(Some("***"));
            }
            if u.query().is_some() {
                u.set_query(Some("***"));
            }
            u.to_string()
        }
        _ => value.to_string(),
    }
}

/// Renders a template string.
pub fn render_str(raw: &str, ctx: &Context) -> Result<String, String> {
    if !raw.contains("{{") && !raw.contains("{%") {
        return Ok(raw.to_string());
    }
    engine().render_str(raw, ctx).map_err(|e| tera_message(&e))
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

/// Whether a condition holds in tera's sense: true, a non-empty string, list or mapping, a
/// non-zero number (so `tls_cert` holds once a certificate is given).
pub fn eval_truthy(expr: &str, ctx: &Context) -> Result<bool, String> {
    let text = render_str(
        &format!("{{% if {expr} %}}true{{% else %}}false{{% endif %}}"),
        ctx,
    )?;
    Ok(text == "true")
}

/// Renders a named file template (the `template:` action, units, env files).
pub fn render_file(name: &str, text: &str, ctx: &Context) -> Result<String, String> {
    let mut tera = engine();
    tera.add_raw_template(name, text)
        .map_err(|e| tera_message(&e))?;
    tera.render(name, ctx).map_err(|e| tera_message(&e))
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
        ctx.insert("cert", &serde_json::Value::Null);
        ctx.insert("key", "/k.pem");
        assert!(!eval_truthy("cert", &ctx).unwrap());
        assert!(eval_truthy("key or cert", &ctx).unwrap());
        assert!(eval_truthy("cert or state == 'absent'", &ctx).unwrap());
    }

    #[test]
    fn env_file_value_reads_a_key_and_masks_uri_secrets() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("mlflow.env");
        std::fs::write(
            &path,
            "# comment\nMLFLOW_BACKEND_STORE_URI=postgresql://mlflow:pw-123@db:5432/mlflow?sslmode=require\nMLFLOW_ARTIFACTS_DESTINATION=/srv/a\n",
        )
        .unwrap();
        let get = |file: &std::path::Path, key: &str| {
            let mut ctx = Context::new();
            ctx.insert("f", &file.display().to_string());
            render_str(
                &format!("{{{{ env_file_value(path=f, key='{key}') }}}}"),
                &ctx,
            )
            .unwrap()
        };
        assert_eq!(
            get(&path, "MLFLOW_BACKEND_STORE_URI"),
            "postgresql://mlflow:***@db:5432/mlflow?***"
        );
        assert_eq!(get(&path, "MLFLOW_ARTIFACTS_DESTINATION"), "/srv/a");
        assert_eq!(get(&path, "MISSING"), "");
        assert_eq!(
            get(&dir.path().join("gone.env"), "MLFLOW_ARTIFACTS_DESTINATION"),
            ""
        );
    }

    #[test]
    fn undefined_variable_is_an_error() {
        let ctx = Context::new();
        let e = render_str("{{ missing }}", &ctx).unwrap_err();
        assert!(e.contains("missing"), "{e}");
    }
}
