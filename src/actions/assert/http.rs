//! `assert: http:` a request and what its answer must be, retried until a deadline: status,
//! body text, a JSON value. Over https it trusts the system's roots, or only `ca:` (a PEM
//! file, e.g. a self-signed server certificate), or nothing with `validate_certs: false`;
//! `username`/`password` send HTTP basic auth (the password is masked in all output).

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use reqwest::blocking::{Client, RequestBuilder};
use reqwest::Method;

use crate::actions::Builder;
use crate::spec::{HttpAssertSpec, StatusSpec};

/// `json: {path, equals, exists}`.
struct JsonCheck {
    path: String,
    equals: Option<serde_json::Value>,
    exists: Option<bool>,
}

/// How the server's certificate is checked.
enum Trust {
    /// The system's roots.
    System,
    /// Only the certificates of this PEM file.
    Only(PathBuf),
    /// Not at all (`validate_certs: false`).
    Nothing,
}

pub struct HttpCheck {
    url: String,
    method: Method,
    headers: BTreeMap<String, String>,
    body: Option<String>,
    basic_auth: Option<(String, String)>,
    trust: Trust,
    status: Vec<u16>,
    contains: Option<String>,
    json: Option<JsonCheck>,
    timeout: Duration,
    within: Duration,
}

pub fn build(h: &HttpAssertSpec, b: &mut Builder<'_>) -> HttpCheck {
    let method = h
        .method
        .as_ref()
        .map(|m| m.value.to_ascii_uppercase())
        .unwrap_or_else(|| "GET".into());
    let method = Method::from_bytes(method.as_bytes()).unwrap_or_else(|_| {
        if let Some(m) = &h.method {
            b.error(m, format!("invalid HTTP method `{}`", m.value));
        }
        Method::GET
    });
    if let Err(e) = url::Url::parse(&h.url.value) {
        b.error(&h.url, format!("invalid url `{}`: {e}", h.url.value));
    }
    let headers: BTreeMap<String, String> = h
        .headers
        .iter()
        .flatten()
        .map(|(k, v)| (k.clone(), v.value.clone()))
        .collect();
    for (k, v) in &headers {
        if k.eq_ignore_ascii_case("authorization") {
            b.secret(v);
        }
    }
    let basic_auth = b.opt_string(&h.username).map(|user| {
        let password = h
            .password
            .as_ref()
            .map(|p| p.value.clone())
            .unwrap_or_default();
        b.secret(&password);
        (user, password)
    });
    if basic_auth.is_none() {
        if let Some(p) = &h.password {
            b.error(p, "`password` needs `username`");
        }
    }
    let trust = match (b.opt_path(&h.ca), b.boolean(&h.validate_certs, true)) {
        (Some(ca), true) => Trust::Only(ca),
        (None, true) => Trust::System,
        (Some(_), false) => {
            if let Some(ca) = &h.ca {
                b.error(ca, "give `ca` or `validate_certs: false`, not both");
            }
            Trust::Nothing
        }
        (None, false) => Trust::Nothing,
    };
    HttpCheck {
        url: h.url.value.clone(),
        method,
        headers,
        body: h.body.as_ref().map(|t| t.value.clone()),
        basic_auth,
        trust,
        status: match h.status.as_ref().map(|s| &s.value) {
            None => vec![200],
            Some(StatusSpec::One(c)) => vec![*c],
            Some(StatusSpec::Many(v)) => v.clone(),
        },
        contains: h.contains.as_ref().map(|t| t.value.clone()),
        json: h.json.as_ref().map(|j| JsonCheck {
            path: j.path.value.clone(),
            equals: j.equals.clone(),
            exists: j.exists,
        }),
        timeout: b.duration(&h.timeout, Duration::from_secs(5)),
        within: b.duration(&h.within, Duration::from_secs(30)),
    }
}

impl HttpCheck {
    pub fn summary(&self) -> String {
        format!("http {} status {:?}", self.url, self.status)
    }

    fn client(&self) -> Result<Client, String> {
        let builder = Client::builder().timeout(self.timeout);
        let builder = match &self.trust {
            Trust::System => builder,
            Trust::Nothing => builder.tls_danger_accept_invalid_certs(true),
            Trust::Only(ca) => {
                let pem = std::fs::read(ca)
                    .map_err(|e| format!("cannot read ca {}: {e}", ca.display()))?;
                let certs = reqwest::Certificate::from_pem_bundle(&pem)
                    .map_err(|e| format!("ca {} is not a PEM certificate: {e}", ca.display()))?;
                builder.tls_certs_only(certs)
            }
        };
        builder.build().map_err(|e| format!("http client: {e}"))
    }

    fn request(&self, client: &Client) -> RequestBuilder {
        let mut req = client.request(self.method.clone(), &self.url);
        for (k, v) in &self.headers {
            req = req.header(k, v);
        }
        if let Some((user, password)) = &self.basic_auth {
            req = req.basic_auth(user, Some(password));
        }
        if let Some(b) = &self.body {
            req = req.body(b.clone());
        }
        req
    }

    /// Retries until the answer is as expected or `within` has passed.
    pub fn run(&self) -> Result<String, String> {
        let client = self.client()?;
        let deadline = Instant::now() + self.within;
        let mut tries = 0u32;
        loop {
            tries += 1;
            match self.once(&client) {
                Ok(m) => return Ok(m),
                Err(e) if Instant::now() >= deadline => {
                    return Err(format!(
                        "{e} (after {tries} tries in {}s)",
                        self.within.as_secs()
                    ))
                }
                Err(_) => std::thread::sleep(Duration::from_millis(500)),
            }
        }
    }

    /// One attempt; `Err` says why it did not hold.
    fn once(&self, client: &Client) -> Result<String, String> {
        let (method, url) = (&self.method, &self.url);
        let resp = self.request(client).send().map_err(|e| {
            let mut msg = e.to_string();
            let mut src = std::error::Error::source(&e);
            while let Some(s) = src {
                msg = format!("{msg}: {s}");
                src = s.source();
            }
            if msg.contains("CaUsedAsEndEntity") {
                msg.push_str(
                    " (the server's certificate is marked as a CA, as `openssl req -x509` makes it by default: make it with `-addext basicConstraints=critical,CA:FALSE`, or give the CA that signed it as `ca`)",
                );
            }
            msg
        })?;
        let code = resp.status().as_u16();
        let text = resp.text().unwrap_or_default();
        if !self.status.contains(&code) {
            return Err(format!(
                "{method} {url} answered {code}, expected {:?}: {}",
                self.status,
                text.chars().take(200).collect::<String>()
            ));
        }
        if let Some(c) = &self.contains {
            if !text.contains(c.as_str()) {
                return Err(format!("{method} {url}: body does not contain `{c}`"));
            }
        }
        if let Some(j) = &self.json {
            let v: serde_json::Value = serde_json::from_str(&text)
                .map_err(|e| format!("{method} {url}: body is not JSON: {e}"))?;
            j.holds(&v)
                .map_err(|why| format!("{method} {url}: JSON at `{}` {why}", j.path))?;
        }
        Ok(format!("{method} {url} → {code}"))
    }
}

impl JsonCheck {
    fn holds(&self, v: &serde_json::Value) -> Result<(), String> {
        let found = v.pointer(&self.path);
        if let Some(want) = self.equals.as_ref().filter(|w| found != Some(*w)) {
            let got = found.map_or_else(|| "missing".into(), |f| f.to_string());
            return Err(format!("is {got}, expected {want}"));
        }
        match self.exists {
            Some(true) if found.is_none() => Err("is missing".into()),
            Some(false) if found.is_some() => Err("exists".into()),
            _ => Ok(()),
        }
    }
}
