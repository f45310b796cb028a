//! Rendering a step's templates in place: every [`Tpl`] of a spec gets its `value` from tera,
//! and each error is collected at the template's position.

use std::collections::BTreeMap;
use std::sync::Arc;

use tera::Context;

use super::{ActionSpec, StatusSpec, Tpl};
use crate::diag::{Diag, Diags, Source};
use crate::template::render_str;

/// Renders templates in `ctx`, reporting errors into `diags`.
pub struct Renderer<'a> {
    pub ctx: &'a Context,
    pub source: Arc<Source>,
    pub diags: &'a mut Diags,
}

impl Renderer<'_> {
    pub fn tpl(&mut self, t: &mut Tpl) {
        if !t.is_template() {
            return;
        }
        match render_str(&t.raw, self.ctx) {
            Ok(v) => t.value = v,
            Err(e) => self.diags.push(Diag::at(&self.source, t.loc, e)),
        }
    }
}

/// Types whose templates can be rendered in place.
pub trait Render {
    fn render(&mut self, r: &mut Renderer<'_>);
}

impl Render for Tpl {
    fn render(&mut self, r: &mut Renderer<'_>) {
        r.tpl(self);
    }
}

impl<T: Render> Render for Option<T> {
    fn render(&mut self, r: &mut Renderer<'_>) {
        if let Some(v) = self {
            v.render(r);
        }
    }
}

impl<T: Render> Render for Box<T> {
    fn render(&mut self, r: &mut Renderer<'_>) {
        self.as_mut().render(r);
    }
}

impl<T: Render> Render for Vec<T> {
    fn render(&mut self, r: &mut Renderer<'_>) {
        self.iter_mut().for_each(|v| v.render(r));
    }
}

impl<T: Render> Render for BTreeMap<String, T> {
    fn render(&mut self, r: &mut Renderer<'_>) {
        self.values_mut().for_each(|v| v.render(r));
    }
}

/// Values that hold no template: rendering leaves them as they are.
macro_rules! no_templates {
    ($($ty:ty),*) => {$(
        impl Render for $ty {
            fn render(&mut self, _: &mut Renderer<'_>) {}
        }
    )*};
}

no_templates!(
    bool,
    i32,
    serde_json::Value,
    serde_saphyr::Spanned<StatusSpec>
);

impl Render for ActionSpec {
    fn render(&mut self, r: &mut Renderer<'_>) {
        match self {
            Self::Package(s) => s.render(r),
            Self::File(s) => s.render(r),
            Self::Template(s) => s.render(r),
            Self::Copy(s) => s.render(r),
            Self::User(s) => s.render(r),
            Self::Service(s) => s.render(r),
            Self::Command(s) => s.render(r),
            Self::Assert(s) => s.render(r),
            Self::Print(s) => s.render(r),
        }
    }
}
