//! The step format shared by playbooks and presets, as it is written in YAML.
//!
//! String fields are [`Tpl`]s: they keep their position and are rendered with tera at plan
//! time. Every struct rejects unknown keys so a typo is reported where it was written.

use std::cell::Cell;
use std::collections::BTreeMap;
use std::fmt;
use std::sync::OnceLock;

use serde::de::{self, Deserializer, MapAccess, Visitor};
use serde::Deserialize;
use serde_saphyr::Spanned;

use crate::diag::Loc;

mod actions;
mod render;

pub use actions::*;
pub use render::{Render, Renderer};

/// A scalar written in YAML (string, number or boolean), kept as text with its position.
/// `raw` is what was written; `value` is the rendered text once [`crate::template`] ran.
#[derive(Debug, Clone, Default)]
pub struct Tpl {
    pub raw: String,
    pub value: String,
    pub loc: Loc,
}

impl Tpl {
    pub fn literal(s: impl Into<String>) -> Self {
        let s = s.into();
        Self {
            raw: s.clone(),
            value: s,
            loc: Loc::default(),
        }
    }
    pub fn as_str(&self) -> &str {
        &self.value
    }
    /// Whether the raw text contains template syntax.
    pub fn is_template(&self) -> bool {
        self.raw.contains("{{") || self.raw.contains("{%")
    }
}

struct Scalar(String);

impl<'de> Deserialize<'de> for Scalar {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl Visitor<'_> for V {
            type Value = Scalar;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a string, number or boolean")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Scalar, E> {
                Ok(Scalar(v.to_string()))
            }
            fn visit_string<E: de::Error>(self, v: String) -> Result<Scalar, E> {
                Ok(Scalar(v))
            }
            fn visit_bool<E: de::Error>(self, v: bool) -> Result<Scalar, E> {
                Ok(Scalar(v.to_string()))
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<Scalar, E> {
                Ok(Scalar(v.to_string()))
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<Scalar, E> {
                Ok(Scalar(v.to_string()))
            }
            fn visit_f64<E: de::Error>(self, v: f64) -> Result<Scalar, E> {
                Ok(Scalar(v.to_string()))
            }
        }
        d.deserialize_any(V)
    }
}

impl<'de> Deserialize<'de> for Tpl {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = Spanned::<Scalar>::deserialize(d)?;
        Ok(Tpl {
            raw: s.value.0.clone(),
            value: s.value.0,
            loc: Loc::from_saphyr(&s.referenced),
        })
    }
}

/// A string-keyed map that keeps the order in which keys were written.
#[derive(Debug, Clone, Default)]
pub struct Ordered<T>(pub Vec<(String, T)>);

impl<'de, T: Deserialize<'de>> Deserialize<'de> for Ordered<T> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V<T>(std::marker::PhantomData<T>);
        impl<'de, T: Deserialize<'de>> Visitor<'de> for V<T> {
            type Value = Ordered<T>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a mapping")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut m: A) -> Result<Ordered<T>, A::Error> {
                let mut out = Vec::new();
                while let Some((k, v)) = m.next_entry::<String, T>()? {
                    out.push((k, v));
                }
                Ok(Ordered(out))
            }
        }
        d.deserialize_map(V(std::marker::PhantomData))
    }
}

/// One step: common fields plus what it does. A valid step has exactly one entry in `does`
/// (checked by the validator, which reports a step with none or several at its position).
#[derive(Debug, Clone)]
pub struct StepSpec {
    pub name: Option<Tpl>,
    pub when: Option<Tpl>,
    pub tags: Option<Vec<String>>,
    pub r#become: Option<Spanned<bool>>,
    pub with: Option<BTreeMap<String, Spanned<serde_json::Value>>>,
    pub does: Vec<StepKind>,
}

/// What a step does: call a preset, set variables, or run one action.
#[derive(Debug, Clone)]
pub enum StepKind {
    Preset(Tpl),
    Vars(Ordered<Tpl>),
    /// The action and the key it was written under.
    Action(&'static str, Box<ActionSpec>),
}

impl StepKind {
    /// The key the step was written with.
    pub fn key(&self) -> &'static str {
        match self {
            Self::Preset(_) => "preset",
            Self::Vars(_) => "vars",
            Self::Action(key, _) => key,
        }
    }
}

/// The actions, by the key a step names them with. Adding one is a variant here (with its
/// spec type); the compiler then asks for it where steps are rendered
/// ([`Render`]), built and reported (`Action` in the `actions` module).
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ActionSpec {
    Package(PackageSpec),
    File(FileSpec),
    Template(TemplateSpec),
    Copy(CopySpec),
    User(UserSpec),
    Service(ServiceSpec),
    Command(CommandSpec),
    Assert(AssertSpec),
    Print(Tpl),
}

/// The step keys that are not actions.
const STEP_FIELDS: &[&str] = &["name", "when", "tags", "become", "with", "preset", "vars"];

/// The keys that start an action (the variant names of [`ActionSpec`]).
pub fn action_keys() -> &'static [&'static str] {
    static KEYS: OnceLock<&'static [&'static str]> = OnceLock::new();
    KEYS.get_or_init(|| {
        let names = Cell::new(&[][..]);
        let _ = ActionSpec::deserialize(Keyed {
            key: "",
            value: de::value::UnitDeserializer::<de::value::Error>::new(),
            variants: Some(&names),
        });
        names.get()
    })
}

/// Every key a step may have, for "unknown field" errors and their suggestions.
fn step_keys() -> &'static [&'static str] {
    static KEYS: OnceLock<Vec<&'static str>> = OnceLock::new();
    KEYS.get_or_init(|| STEP_FIELDS.iter().chain(action_keys()).copied().collect())
}

impl<'de> Deserialize<'de> for StepSpec {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = StepSpec;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a step (a mapping such as `preset: mlflow`)")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut m: A) -> Result<StepSpec, A::Error> {
                let mut step = StepSpec {
                    name: None,
                    when: None,
                    tags: None,
                    r#become: None,
                    with: None,
                    does: Vec::new(),
                };
                while let Some(key) = m.next_key::<String>()? {
                    match key.as_str() {
                        "name" => step.name = Some(m.next_value()?),
                        "when" => step.when = Some(m.next_value()?),
                        "tags" => step.tags = Some(m.next_value()?),
                        "become" => step.r#become = Some(m.next_value()?),
                        "with" => step.with = Some(m.next_value()?),
                        "preset" => step.does.push(StepKind::Preset(m.next_value()?)),
                        "vars" => step.does.push(StepKind::Vars(m.next_value()?)),
                        other => {
                            // Checked before the value is read, so the error points at the key.
                            let Some(key) = action_keys().iter().find(|k| **k == other) else {
                                return Err(de::Error::unknown_field(other, step_keys()));
                            };
                            let spec = m.next_value_seed(ActionSeed(key))?;
                            step.does.push(StepKind::Action(key, Box::new(spec)));
                        }
                    }
                }
                Ok(step)
            }
        }
        d.deserialize_map(V)
    }
}

/// Reads the value under action key `.0` as that variant of [`ActionSpec`].
struct ActionSeed(&'static str);

impl<'de> de::DeserializeSeed<'de> for ActionSeed {
    type Value = ActionSpec;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<ActionSpec, D::Error> {
        ActionSpec::deserialize(Keyed {
            key: self.0,
            value: d,
            variants: None,
        })
    }
}

/// A deserializer that presents `key: value` (the key already read from the step) as an enum
/// to [`ActionSpec`]'s derived `Deserialize`, so that the variant list is the only place the
/// keys are written. With `variants`, it only records that list.
struct Keyed<'a, D> {
    key: &'static str,
    value: D,
    variants: Option<&'a Cell<&'static [&'static str]>>,
}

impl<'de, D: Deserializer<'de>> Deserializer<'de> for Keyed<'_, D> {
    type Error = D::Error;
    fn deserialize_enum<V: Visitor<'de>>(
        self,
        _: &'static str,
        variants: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, D::Error> {
        if let Some(names) = self.variants {
            names.set(variants);
            return Err(de::Error::custom("variant names recorded"));
        }
        visitor.visit_enum(self)
    }
    fn deserialize_any<V: Visitor<'de>>(self, _: V) -> Result<V::Value, D::Error> {
        Err(de::Error::custom("an action is read as an enum"))
    }
    serde::forward_to_deserialize_any! {
        bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char str string bytes byte_buf
        option unit unit_struct newtype_struct seq tuple tuple_struct map struct identifier
        ignored_any
    }
}

impl<'de, D: Deserializer<'de>> de::EnumAccess<'de> for Keyed<'_, D> {
    type Error = D::Error;
    type Variant = Self;
    fn variant_seed<S: de::DeserializeSeed<'de>>(
        self,
        seed: S,
    ) -> Result<(S::Value, Self), D::Error> {
        let variant = seed.deserialize(de::value::BorrowedStrDeserializer::new(self.key))?;
        Ok((variant, self))
    }
}

impl<'de, D: Deserializer<'de>> de::VariantAccess<'de> for Keyed<'_, D> {
    type Error = D::Error;
    fn newtype_variant_seed<S: de::DeserializeSeed<'de>>(
        self,
        seed: S,
    ) -> Result<S::Value, D::Error> {
        seed.deserialize(self.value)
    }
    fn unit_variant(self) -> Result<(), D::Error> {
        Err(de::Error::custom("actions take a value"))
    }
    fn tuple_variant<V: Visitor<'de>>(self, _: usize, _: V) -> Result<V::Value, D::Error> {
        Err(de::Error::custom("actions take a value"))
    }
    fn struct_variant<V: Visitor<'de>>(
        self,
        _: &'static [&'static str],
        _: V,
    ) -> Result<V::Value, D::Error> {
        Err(de::Error::custom("actions take a value"))
    }
}
