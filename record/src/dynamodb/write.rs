//! DynamoDB JSON the other way round: attribute values for tools that make
//! stream records (`relay sample`, `relay poll`), so the type tags are known
//! in this one module, next to the decoder that reads them.

use serde_json::{Map, Value};

/// `{"S": text}`.
pub fn s(text: impl Into<String>) -> Value {
    tagged("S", Value::String(text.into()))
}

/// `{"N": digits}`: the number's text, as DynamoDB sends it.
pub fn n(digits: impl Into<String>) -> Value {
    tagged("N", Value::String(digits.into()))
}

/// `{"B": base64}`.
pub fn b(base64: impl Into<String>) -> Value {
    tagged("B", Value::String(base64.into()))
}

/// `{"BOOL": value}`.
pub fn boolean(value: bool) -> Value {
    tagged("BOOL", Value::Bool(value))
}

/// `{"NULL": true}`.
pub fn null() -> Value {
    tagged("NULL", Value::Bool(true))
}

/// `{"L": [...]}` of attribute values.
pub fn l(values: Vec<Value>) -> Value {
    tagged("L", Value::Array(values))
}

/// `{"M": {...}}` of attribute values.
pub fn m(attributes: Map<String, Value>) -> Value {
    tagged("M", Value::Object(attributes))
}

/// `{"SS": [...]}`.
pub fn ss(strings: Vec<String>) -> Value {
    tagged("SS", strings.into())
}

/// `{"NS": [...]}` of number texts.
pub fn ns(numbers: Vec<String>) -> Value {
    tagged("NS", numbers.into())
}

/// `{"BS": [...]}` of base64 texts.
pub fn bs(blobs: Vec<String>) -> Value {
    tagged("BS", blobs.into())
}

fn tagged(tag: &str, value: Value) -> Value {
    let mut object = Map::with_capacity(1);
    object.insert(tag.to_owned(), value);
    Value::Object(object)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn written_values_decode_to_what_was_meant() {
        let mut item = Map::new();
        item.insert("name".into(), s("o-1"));
        item.insert("amount".into(), n("12.50"));
        item.insert("blob".into(), b("AAH/"));
        item.insert("paid".into(), boolean(true));
        item.insert("note".into(), null());
        item.insert("lines".into(), l(vec![n("1"), s("x")]));
        item.insert("tags".into(), ss(vec!["a".into()]));
        item.insert("ids".into(), ns(vec!["7".into()]));
        item.insert("bins".into(), bs(vec!["AA==".into()]));
        let mut inner = Map::new();
        inner.insert("city".into(), s("Berlin"));
        item.insert("address".into(), m(inner));
        let decoded = super::super::decode_item(&Value::Object(item)).unwrap();
        assert_eq!(
            decoded.to_string(),
            r#"{"address":{"city":"Berlin"},"amount":12.50,"bins":["AA=="],"blob":"AAH/","ids":[7],"lines":[1,"x"],"name":"o-1","note":null,"paid":true,"tags":["a"]}"#
        );
    }
}
