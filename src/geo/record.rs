//! Decoding any MaxMind DB value into a [`serde_json::Value`].
//!
//! `serde_json::Value`'s own `Deserialize` rejects two MaxMind DB types (byte strings
//! and 128-bit integers), which would make a whole record unreadable because of one odd
//! field. [`RecordValue`] accepts every MaxMind DB type. Map keys keep the order they
//! have in the database (serde_json's `preserve_order`), like the Python dict IVRE's own
//! decoder builds.

use serde::de::{self, Deserialize, Deserializer, MapAccess, SeqAccess, Visitor};
use serde_json::{Map, Number, Value};
use std::fmt;

/// A MaxMind DB value as JSON.
///
/// - integers (uint16/32/64, int32) become JSON integers; a uint128 that does not fit
///   in 64 bits becomes its decimal string (JSON numbers cannot hold it exactly);
/// - float and double become JSON floats (a non-finite one becomes `null`);
/// - byte strings become lowercase hexadecimal strings;
/// - maps and arrays are decoded recursively, keeping the database's key order.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct RecordValue(pub(crate) Value);

impl<'de> Deserialize<'de> for RecordValue {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(RecordVisitor).map(RecordValue)
    }
}

struct RecordVisitor;

impl<'de> Visitor<'de> for RecordVisitor {
    type Value = Value;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a MaxMind DB value")
    }

    fn visit_bool<E: de::Error>(self, v: bool) -> Result<Value, E> {
        Ok(Value::Bool(v))
    }

    fn visit_i64<E: de::Error>(self, v: i64) -> Result<Value, E> {
        Ok(Value::Number(v.into()))
    }

    fn visit_u64<E: de::Error>(self, v: u64) -> Result<Value, E> {
        Ok(Value::Number(v.into()))
    }

    fn visit_u128<E: de::Error>(self, v: u128) -> Result<Value, E> {
        Ok(match u64::try_from(v) {
            Ok(small) => Value::Number(small.into()),
            Err(_) => Value::String(v.to_string()),
        })
    }

    fn visit_i128<E: de::Error>(self, v: i128) -> Result<Value, E> {
        Ok(match i64::try_from(v) {
            Ok(small) => Value::Number(small.into()),
            Err(_) => Value::String(v.to_string()),
        })
    }

    fn visit_f64<E: de::Error>(self, v: f64) -> Result<Value, E> {
        Ok(Number::from_f64(v).map_or(Value::Null, Value::Number))
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<Value, E> {
        Ok(Value::String(v.to_owned()))
    }

    fn visit_string<E: de::Error>(self, v: String) -> Result<Value, E> {
        Ok(Value::String(v))
    }

    fn visit_bytes<E: de::Error>(self, v: &[u8]) -> Result<Value, E> {
        Ok(Value::String(
            v.iter().map(|b| format!("{b:02x}")).collect(),
        ))
    }

    fn visit_unit<E: de::Error>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }

    fn visit_none<E: de::Error>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }

    fn visit_some<D: Deserializer<'de>>(self, deserializer: D) -> Result<Value, D::Error> {
        RecordValue::deserialize(deserializer).map(|v| v.0)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Value, A::Error> {
        let mut items = Vec::with_capacity(seq.size_hint().unwrap_or(0).min(64));
        while let Some(RecordValue(item)) = seq.next_element()? {
            items.push(item);
        }
        Ok(Value::Array(items))
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Value, A::Error> {
        let mut object = Map::new();
        while let Some((key, RecordValue(value))) = map.next_entry::<String, RecordValue>()? {
            object.insert(key, value);
        }
        Ok(Value::Object(object))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde::de::value::{BorrowedBytesDeserializer, Error, U128Deserializer};

    #[test]
    fn odd_scalars() {
        let big = RecordValue::deserialize(U128Deserializer::<Error>::new(u128::MAX)).unwrap();
        assert_eq!(big.0, Value::String(u128::MAX.to_string()));
        let small = RecordValue::deserialize(U128Deserializer::<Error>::new(7)).unwrap();
        assert_eq!(small.0, Value::from(7));
        let bytes =
            RecordValue::deserialize(BorrowedBytesDeserializer::<Error>::new(&[0, 0xab])).unwrap();
        assert_eq!(bytes.0, Value::String("00ab".into()));
    }
}
