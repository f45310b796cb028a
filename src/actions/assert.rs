//! `assert:` checks that something holds: an HTTP answer (retried until a deadline), a
//! command's exit code and output, or a file. Never changes anything.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use super::{Builder, Change, Check, Cx, Operation};
use crate::spec::{AssertSpec, StatusSpec};

enum Kind {
    Http {
        url: String,
        method: reqwest::Method,
        headers: BTreeMap<String, String>,
        body: Option<String>,
        status: Vec<u16>,
        contains: Option<String>,
        json: Option<(String, Option<serde_json::Value>, Option<bool>)>,
        timeout: Duration,
        within: Duration,
    },
    Command {
        argv: Vec<String>,
        exit_code: i32,
        contains: Option<String>,
    },
    File {
        path: PathBuf,
        exists: bool,
        mode: Option<u32>,
        contains: Option<String>,
    },
}

pub struct AssertAction(Kind);

pub fn build(s: &AssertSpec, b: &mut Builder<'_>) -> Option<AssertAction> {
    let n = [s.http.is_some(), s.command.is_some(), s.file.is_some()]
        .iter()
        .filter(|x| **x)
        .count();
    if n != 1 {
        b.problem("assert needs exactly one of `http`, `command`, `file`");
        return None;
    }
    if let Some(h) = &s.http {
        let method = h
            .method
            .as_ref()
            .map(|m| m.value.to_ascii_uppercase())
            .unwrap_or_else(|| "GET".into());
        let method = match reqwest::Method::from_bytes(method.as_bytes()) {
            Ok(m) => m,
            Err(_) => {
                b.error(
                    h.method.as_ref()?,
                    format!("invalid HTTP method `{method}`"),
                );
                reqwest::Method::GET
            }
        };
        if let Err(e) = url::Url::parse(&h.url.value) {
            b.error(&h.url, format!("invalid url `{}`: {e}", h.url.value));
        }
        let status = match h.status.as_ref().map(|s| &s.value) {
            None => vec![200],
            Some(StatusSpec::One(c)) => vec![*c],
            Some(StatusSpec::Many(v)) => v.clone(),
        };
        return Some(AssertAction(Kind::Http {
            url: h.url.value.clone(),
            method,
            headers: h
                .headers
                .as_ref()
                .map(|m| {
                    m.iter()
                        .map(|(k, v)| (k.clone(), v.value.clone()))
                        .collect()
                })
                .unwrap_or_default(),
            body: h.body.as_ref().map(|t| t.value.clone()),
            status,
            contains: h.contains.as_ref().map(|t| t.value.clone()),
            json: h
                .json
                .as_ref()
                .map(|j| (j.path.value.clone(), j.equals.clone(), j.exists)),
            timeout: b.duration(&h.timeout, Duration::from_secs(5)),
            within: b.duration(&h.within, Duration::from_secs(30)),
        }));
    }
    if let Some(c) = &s.command {
        return Some(AssertAction(Kind::Command {
            argv: b.strings(&c.argv),
            exit_code: c.exit_code.unwrap_or(0),
            contains: c.contains.as_ref().map(|t| t.value.clone()),
        }));
    }
    let f = s.file.as_ref()?;
    Some(AssertAction(Kind::File {
        path: b.path(&f.path),
        exists: f.exists.unwrap_or(true),
        mode: b.mode(&f.mode),
        contains: f.contains.as_ref().map(|t| t.value.clone()),
    }))
}

/// One HTTP attempt; `Err` says why it did not hold.
#[allow(clippy::too_many_arguments)]
fn http_once(
    client: &reqwest::blocking::Client,
    url: &str,
    method: &reqwest::Method,
    headers: &BTreeMap<String, String>,
    body: &Option<String>,
    status: &[u16],
    contains: &Option<String>,
    json: &Option<(String, Option<serde_json::Value>, Option<bool>)>,
) -> Result<String, String> {
    let mut req = client.request(method.clone(), url);
    for (k, v) in headers {
        req = req.header(k, v);
    }
    if let Some(b) = body {
        req = req.body(b.clone());
    }
    let resp = req.send().map_err(|e| {
        let mut msg = e.to_string();
        let mut src = std::error::Error::source(&e);
        while let Some(s) = src {
            msg = format!("{msg}: {s}");
            src = s.source();
        }
        msg
    })?;
    let code = resp.status().as_u16();
    let text = resp.text().unwrap_or_default();
    if !status.contains(&code) {
        return Err(format!(
            "{method} {url} answered {code}, expected {status:?}: {}",
            text.chars().take(200).collect::<String>()
        ));
    }
    if let Some(c) = contains {
        if !text.contains(c.as_str()) {
            return Err(format!("{method} {url}: body does not contain `{c}`"));
        }
    }
    if let Some((path, equals, exists)) = json {
        let v: serde_json::Value = serde_json::from_str(&text)
            .map_err(|e| format!("{method} {url}: body is not JSON: {e}"))?;
        let found = v.pointer(path);
        if let Some(want) = equals {
            if found != Some(want) {
                return Err(format!(
                    "{method} {url}: JSON at `{path}` is {}, expected {want}",
                    found
                        .map(|f| f.to_string())
                        .unwrap_or_else(|| "missing".into())
                ));
            }
        }
        if let Some(e) = exists {
            if found.is_some() != *e {
                return Err(format!(
                    "{method} {url}: JSON at `{path}` {}",
                    if *e { "is missing" } else { "exists" }
                ));
            }
        }
    }
    Ok(format!("{method} {url} → {code}"))
}

impl AssertAction {
    fn run(&self, cx: &Cx<'_>) -> Result<String, String> {
        match &self.0 {
            Kind::Http {
                url,
                method,
                headers,
                body,
                status,
                contains,
                json,
                timeout,
                within,
            } => {
                let client = reqwest::blocking::Client::builder()
                    .timeout(*timeout)
                    .build()
                    .map_err(|e| format!("http client: {e}"))?;
                let deadline = Instant::now() + *within;
                let mut tries = 0u32;
                loop {
                    tries += 1;
                    match http_once(&client, url, method, headers, body, status, contains, json) {
                        Ok(m) => return Ok(m),
                        Err(e) if Instant::now() >= deadline => {
                            return Err(format!(
                                "{e} (after {tries} tries in {}s)",
                                within.as_secs()
                            ))
                        }
                        Err(_) => std::thread::sleep(Duration::from_millis(500)),
                    }
                }
            }
            Kind::Command {
                argv,
                exit_code,
                contains,
            } => {
                let out = cx.sys.run(argv)?;
                let code = out.status.code().unwrap_or(-1);
                if code != *exit_code {
                    return Err(format!(
                        "`{}` exited with {code}, expected {exit_code}",
                        argv.join(" ")
                    ));
                }
                if let Some(c) = contains {
                    let text = String::from_utf8_lossy(&out.stdout);
                    if !text.contains(c.as_str()) {
                        return Err(format!(
                            "output of `{}` does not contain `{c}`",
                            argv.join(" ")
                        ));
                    }
                }
                Ok(format!("`{}` exited with {code}", argv.join(" ")))
            }
            Kind::File {
                path,
                exists,
                mode,
                contains,
            } => {
                let shown = path.display();
                let st = crate::system::stat(path);
                if st.is_some() != *exists {
                    return Err(format!(
                        "{shown} {}",
                        if *exists { "does not exist" } else { "exists" }
                    ));
                }
                if let (Some(m), Some((cur, ..))) = (mode, st) {
                    if *m != cur {
                        return Err(format!("{shown} has mode {cur:04o}, expected {m:04o}"));
                    }
                }
                if let Some(c) = contains {
                    let text = cx.sys.read(path)?.unwrap_or_default();
                    if !String::from_utf8_lossy(&text).contains(c.as_str()) {
                        return Err(format!("{shown} does not contain `{c}`"));
                    }
                }
                Ok(format!("{shown} as expected"))
            }
        }
    }
}

impl Operation for AssertAction {
    type Plan = ();

    fn summary(&self) -> String {
        match &self.0 {
            Kind::Http { url, status, .. } => format!("http {url} status {status:?}"),
            Kind::Command { argv, .. } => format!("command {}", argv.join(" ")),
            Kind::File { path, .. } => format!("file {}", path.display()),
        }
    }

    fn check(&self, cx: &Cx<'_>) -> Result<Check, String> {
        if cx.check_mode && cx.predicted {
            return Ok(Check::Skip(
                "earlier steps would change the system; not asserted in --check".into(),
            ));
        }
        self.run(cx).map(Check::Ok)
    }

    fn apply(&self, cx: &Cx<'_>, _: &Change) -> Result<String, String> {
        self.run(cx)
    }
}
