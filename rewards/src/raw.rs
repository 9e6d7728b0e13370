//! [`Raw`]: a lossless, format-neutral copy of a config table, so that a `[[rewards]]` entry can
//! be read in two steps (shared fields, then the kind's own options) without going through
//! `serde_json::Value`, which turns TOML's `nan` and `inf` into `null` — and validation could
//! then no longer say "`rewards[1].weight` = NaN: must be finite".

use serde::de::value::{Error, MapDeserializer, SeqDeserializer};
use serde::de::{self, Deserialize, Deserializer, IntoDeserializer, MapAccess, SeqAccess, Visitor};
use std::fmt;

/// Any self-describing value, kept as it was read.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Raw {
    Unit,
    Bool(bool),
    I64(i64),
    U64(u64),
    F64(f64),
    Str(String),
    Seq(Vec<Raw>),
    Map(Vec<(String, Raw)>),
}

impl<'de> Deserialize<'de> for Raw {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct RawVisitor;

        impl<'de> Visitor<'de> for RawVisitor {
            type Value = Raw;

            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("any value")
            }
            fn visit_unit<E>(self) -> Result<Raw, E> {
                Ok(Raw::Unit)
            }
            fn visit_none<E>(self) -> Result<Raw, E> {
                Ok(Raw::Unit)
            }
            fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<Raw, D::Error> {
                Raw::deserialize(d)
            }
            fn visit_bool<E>(self, v: bool) -> Result<Raw, E> {
                Ok(Raw::Bool(v))
            }
            fn visit_i64<E>(self, v: i64) -> Result<Raw, E> {
                Ok(Raw::I64(v))
            }
            fn visit_u64<E>(self, v: u64) -> Result<Raw, E> {
                Ok(Raw::U64(v))
            }
            fn visit_f64<E>(self, v: f64) -> Result<Raw, E> {
                Ok(Raw::F64(v))
            }
            fn visit_str<E>(self, v: &str) -> Result<Raw, E> {
                Ok(Raw::Str(v.to_string()))
            }
            fn visit_string<E>(self, v: String) -> Result<Raw, E> {
                Ok(Raw::Str(v))
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Raw, A::Error> {
                let mut items = Vec::new();
                while let Some(item) = seq.next_element()? {
                    items.push(item);
                }
                Ok(Raw::Seq(items))
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Raw, A::Error> {
                let mut entries = Vec::new();
                while let Some(entry) = map.next_entry::<String, Raw>()? {
                    entries.push(entry);
                }
                Ok(Raw::Map(entries))
            }
        }

        deserializer.deserialize_any(RawVisitor)
    }
}

impl<'de> Deserializer<'de> for Raw {
    type Error = Error;

    fn deserialize_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        match self {
            Raw::Unit => visitor.visit_unit(),
            Raw::Bool(v) => visitor.visit_bool(v),
            Raw::I64(v) => visitor.visit_i64(v),
            Raw::U64(v) => visitor.visit_u64(v),
            Raw::F64(v) => visitor.visit_f64(v),
            Raw::Str(v) => visitor.visit_string(v),
            Raw::Seq(v) => visitor.visit_seq(SeqDeserializer::new(v.into_iter())),
            Raw::Map(v) => visitor.visit_map(MapDeserializer::new(v.into_iter())),
        }
    }

    fn deserialize_option<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        match self {
            Raw::Unit => visitor.visit_none(),
            other => visitor.visit_some(other),
        }
    }

    fn deserialize_enum<V: Visitor<'de>>(
        self,
        name: &'static str,
        variants: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, Error> {
        match self {
            Raw::Str(s) => visitor.visit_enum(s.into_deserializer()),
            other => other.deserialize_any(EnumVisitor {
                inner: visitor,
                name,
                variants,
            }),
        }
    }

    serde::forward_to_deserialize_any! {
        bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char str string
        bytes byte_buf unit unit_struct newtype_struct seq tuple tuple_struct map struct
        identifier ignored_any
    }
}

/// Rejects non-string enum representations with serde's usual message (the configs only use
/// unit variants written as strings).
struct EnumVisitor<V> {
    inner: V,
    name: &'static str,
    variants: &'static [&'static str],
}

impl<'de, V: Visitor<'de>> Visitor<'de> for EnumVisitor<V> {
    type Value = V::Value;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "one of {:?} for `{}`", self.variants, self.name)?;
        self.inner.expecting(f)
    }
}

impl IntoDeserializer<'_, Error> for Raw {
    type Deserializer = Self;

    fn into_deserializer(self) -> Self {
        self
    }
}

impl Raw {
    /// Removes and returns the value of `key` from a map; `None` when absent or not a map.
    pub(crate) fn take(&mut self, key: &str) -> Option<Raw> {
        let Raw::Map(entries) = self else {
            return None;
        };
        let i = entries.iter().position(|(k, _)| k == key)?;
        Some(entries.remove(i).1)
    }

    /// The string value of `key` in a map, if it is one.
    pub(crate) fn get_str(&self, key: &str) -> Option<&str> {
        let Raw::Map(entries) = self else {
            return None;
        };
        entries.iter().find_map(|(k, v)| match v {
            Raw::Str(s) if k == key => Some(s.as_str()),
            _ => None,
        })
    }

    /// Deserialises a `T` from this value.
    pub(crate) fn parse<T: de::DeserializeOwned>(self) -> Result<T, Error> {
        T::deserialize(self)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde::Deserialize;

    #[derive(Debug, Deserialize, PartialEq)]
    #[serde(deny_unknown_fields)]
    struct S {
        x: f64,
        n: Option<usize>,
        mode: Mode,
        list: Vec<u8>,
    }

    #[derive(Debug, Deserialize, PartialEq)]
    #[serde(rename_all = "snake_case")]
    enum Mode {
        FirstMode,
    }

    #[test]
    fn keeps_non_finite_floats_and_reads_structs() {
        let raw: Raw =
            serde_json::from_str(r#"{"x": 1, "n": null, "mode": "first_mode", "list": [1, 2]}"#)
                .unwrap();
        let mut with_nan = raw.clone();
        with_nan.take("x");
        let Raw::Map(entries) = &mut with_nan else {
            panic!()
        };
        entries.push(("x".into(), Raw::F64(f64::NAN)));
        let s: S = with_nan.parse().unwrap();
        assert!(s.x.is_nan());
        let s: S = raw.parse().unwrap();
        assert_eq!(
            s,
            S {
                x: 1.0,
                n: None,
                mode: Mode::FirstMode,
                list: vec![1, 2]
            }
        );
    }

    #[test]
    fn reports_unknown_fields_and_bad_variants() {
        let raw: Raw =
            serde_json::from_str(r#"{"x": 1, "mode": "first_mode", "list": [], "y": 2}"#).unwrap();
        let err = raw.parse::<S>().unwrap_err().to_string();
        assert!(err.contains("unknown field `y`"), "{err}");
        let raw: Raw = serde_json::from_str(r#"{"x": 1, "mode": "other", "list": []}"#).unwrap();
        let err = raw.parse::<S>().unwrap_err().to_string();
        assert!(err.contains("unknown variant `other`"), "{err}");
    }
}
