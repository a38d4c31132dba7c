//! The part of JSON Schema draft 4 that Swagger 2.0 schemas (and so Firecracker's file)
//! use: `type`, `properties`, `required`, `additionalProperties`, `enum`, `minimum`,
//! `maximum` (with draft 4's boolean `exclusiveMinimum`/`exclusiveMaximum`), `items`,
//! `minItems`/`maxItems`, `minLength`/`maxLength`, `allOf` and `$ref` to
//! `#/definitions/NAME`. A validation keyword outside that set is an error, never ignored:
//! a newer file that uses one must not pass by accident. `format` is an annotation here, as
//! in draft 4 validators by default (Python's `jsonschema.Draft4Validator` too).

use serde_json::{Map, Value};
use std::fmt;

/// Keywords that only describe (Swagger's own among them): nothing to check.
const ANNOTATIONS: &[&str] = &["description", "title", "default", "example", "format", "readOnly", "discriminator"];

/// Where in the instance a problem is, as a JSON pointer (`/drives/0/path_on_host`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pointer(String);

impl Pointer {
    fn child(&self, key: impl fmt::Display) -> Pointer {
        Pointer(format!("{}/{key}", self.0))
    }
}

impl fmt::Display for Pointer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.0.is_empty() {
            f.write_str("the body")
        } else {
            f.write_str(&self.0)
        }
    }
}

/// Why an instance does not match a schema.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum Problem {
    #[error("{at}: {found} is not of type {expected}")]
    WrongType { at: Pointer, expected: String, found: Value },
    #[error("{at}: the required property {name:?} is missing")]
    MissingRequired { at: Pointer, name: String },
    #[error("{at}: the property {name:?} is not allowed (additionalProperties: false)")]
    UnknownProperty { at: Pointer, name: String },
    #[error("{at}: {found} is not one of {allowed}")]
    NotInEnum { at: Pointer, found: Value, allowed: Value },
    #[error("{at}: {found} is below the minimum {limit}")]
    BelowMinimum { at: Pointer, found: Value, limit: Value },
    #[error("{at}: {found} is above the maximum {limit}")]
    AboveMaximum { at: Pointer, found: Value, limit: Value },
    #[error("{at}: {count} is not within {keyword} {limit}")]
    Length { at: Pointer, keyword: &'static str, count: usize, limit: u64 },
    #[error("{at}: $ref {reference:?} names no definition in the file")]
    UnresolvedRef { at: Pointer, reference: String },
    #[error("{at}: the schema keyword {keyword:?} is not supported by this validator")]
    UnsupportedKeyword { at: Pointer, keyword: String },
    #[error("{at}: the schema is not an object: {schema}")]
    NotASchema { at: Pointer, schema: Value },
}

/// Checks `instance` against `schema`, resolving `$ref`s in `definitions`. The first
/// problem found is returned.
pub fn validate(instance: &Value, schema: &Value, definitions: &Map<String, Value>) -> Result<(), Problem> {
    Validator { definitions }.check(instance, schema, &Pointer(String::new()))
}

/// The validation keywords `schema` uses, at any depth, that [`validate`] does not
/// implement: a whole file can be vetted at once, not only the parts an instance reaches.
pub fn unsupported_keywords(schema: &Value) -> Vec<String> {
    let mut found = Vec::new();
    let Some(schema) = schema.as_object() else { return found };
    for (keyword, value) in schema {
        let nested: Vec<&Value> = match keyword.as_str() {
            "properties" => value.as_object().map(|p| p.values().collect()).unwrap_or_default(),
            "items" | "allOf" => value.as_array().map(|a| a.iter().collect()).unwrap_or_else(|| vec![value]),
            "additionalProperties" => vec![value],
            k if SUPPORTED.contains(&k) || ANNOTATIONS.contains(&k) || k.starts_with("x-") => Vec::new(),
            other => {
                found.push(other.to_owned());
                Vec::new()
            }
        };
        nested.into_iter().for_each(|n| found.extend(unsupported_keywords(n)));
    }
    found
}

/// The keywords [`validate`] checks.
const SUPPORTED: &[&str] = &[
    "$ref",
    "type",
    "properties",
    "required",
    "additionalProperties",
    "enum",
    "minimum",
    "maximum",
    "exclusiveMinimum",
    "exclusiveMaximum",
    "items",
    "minItems",
    "maxItems",
    "minLength",
    "maxLength",
    "allOf",
];

struct Validator<'a> {
    definitions: &'a Map<String, Value>,
}

impl Validator<'_> {
    fn check(&self, instance: &Value, schema: &Value, at: &Pointer) -> Result<(), Problem> {
        let Some(schema) = schema.as_object() else {
            return Err(Problem::NotASchema { at: at.clone(), schema: schema.clone() });
        };
        if let Some(reference) = schema.get("$ref") {
            // Draft 4: a $ref replaces the schema it is in; its siblings are ignored.
            return self.check(instance, self.resolve(reference, at)?, at);
        }
        for (keyword, value) in schema {
            match keyword.as_str() {
                "type" => check_type(instance, value, at)?,
                "properties" => self.properties(instance, value, at)?,
                "required" => required(instance, value, at)?,
                "additionalProperties" => self.additional(instance, schema, value, at)?,
                "enum" => {
                    let allowed = value.as_array().map(|a| a.contains(instance)).unwrap_or(false);
                    if !allowed {
                        return Err(Problem::NotInEnum {
                            at: at.clone(),
                            found: instance.clone(),
                            allowed: value.clone(),
                        });
                    }
                }
                "minimum" | "maximum" => bound(instance, schema, keyword, value, at)?,
                "exclusiveMinimum" | "exclusiveMaximum" => {} // Read with their bound.
                "items" => self.items(instance, value, at)?,
                "minItems" | "maxItems" | "minLength" | "maxLength" => length(instance, keyword, value, at)?,
                "allOf" => {
                    for part in value.as_array().into_iter().flatten() {
                        self.check(instance, part, at)?;
                    }
                }
                k if ANNOTATIONS.contains(&k) || k.starts_with("x-") => {}
                other => return Err(Problem::UnsupportedKeyword { at: at.clone(), keyword: other.to_owned() }),
            }
        }
        Ok(())
    }

    fn resolve(&self, reference: &Value, at: &Pointer) -> Result<&Value, Problem> {
        let text = reference.as_str().unwrap_or_default();
        text.strip_prefix("#/definitions/")
            .and_then(|name| self.definitions.get(name))
            .ok_or_else(|| Problem::UnresolvedRef { at: at.clone(), reference: text.to_owned() })
    }

    fn properties(&self, instance: &Value, properties: &Value, at: &Pointer) -> Result<(), Problem> {
        let (Some(object), Some(properties)) = (instance.as_object(), properties.as_object()) else { return Ok(()) };
        for (name, value) in object {
            if let Some(schema) = properties.get(name) {
                self.check(value, schema, &at.child(name))?;
            }
        }
        Ok(())
    }

    /// `additionalProperties`: false refuses names `properties` does not list; a schema
    /// checks their values. (Draft 4's `patternProperties` would also exempt names; the
    /// file has none, and it is refused as unsupported.)
    fn additional(
        &self,
        instance: &Value,
        schema: &Map<String, Value>,
        rule: &Value,
        at: &Pointer,
    ) -> Result<(), Problem> {
        let Some(object) = instance.as_object() else { return Ok(()) };
        let listed = schema.get("properties").and_then(Value::as_object);
        for (name, value) in object {
            if listed.is_some_and(|l| l.contains_key(name)) {
                continue;
            }
            match rule {
                Value::Bool(false) => return Err(Problem::UnknownProperty { at: at.clone(), name: name.clone() }),
                Value::Bool(true) => {}
                schema => self.check(value, schema, &at.child(name))?,
            }
        }
        Ok(())
    }

    fn items(&self, instance: &Value, items: &Value, at: &Pointer) -> Result<(), Problem> {
        let Some(array) = instance.as_array() else { return Ok(()) };
        for (i, item) in array.iter().enumerate() {
            // Draft 4's tuple form: one schema per position, the rest unchecked here
            // (`additionalItems` would be refused as unsupported).
            let schema = match items {
                Value::Array(each) => match each.get(i) {
                    Some(schema) => schema,
                    None => continue,
                },
                schema => schema,
            };
            self.check(item, schema, &at.child(i))?;
        }
        Ok(())
    }
}

/// Draft 4's types: an `integer` is a number without a fraction written as an integer
/// (`1.0` is a `number`, as Python's Draft4Validator has it).
fn has_type(instance: &Value, name: &str) -> bool {
    match name {
        "object" => instance.is_object(),
        "array" => instance.is_array(),
        "string" => instance.is_string(),
        "boolean" => instance.is_boolean(),
        "null" => instance.is_null(),
        "number" => instance.is_number(),
        "integer" => instance.is_i64() || instance.is_u64(),
        _ => false,
    }
}

fn check_type(instance: &Value, expected: &Value, at: &Pointer) -> Result<(), Problem> {
    let ok = match expected {
        Value::String(name) => has_type(instance, name),
        Value::Array(names) => names.iter().filter_map(Value::as_str).any(|n| has_type(instance, n)),
        _ => false,
    };
    if ok {
        return Ok(());
    }
    Err(Problem::WrongType { at: at.clone(), expected: expected.to_string(), found: instance.clone() })
}

fn required(instance: &Value, names: &Value, at: &Pointer) -> Result<(), Problem> {
    let Some(object) = instance.as_object() else { return Ok(()) };
    for name in names.as_array().into_iter().flatten().filter_map(Value::as_str) {
        if !object.contains_key(name) {
            return Err(Problem::MissingRequired { at: at.clone(), name: name.to_owned() });
        }
    }
    Ok(())
}

fn bound(
    instance: &Value,
    schema: &Map<String, Value>,
    keyword: &str,
    limit: &Value,
    at: &Pointer,
) -> Result<(), Problem> {
    let (Some(found), Some(bound)) = (instance.as_f64(), limit.as_f64()) else { return Ok(()) };
    let minimum = keyword == "minimum";
    let exclusive_key = if minimum { "exclusiveMinimum" } else { "exclusiveMaximum" };
    let exclusive = schema.get(exclusive_key).and_then(Value::as_bool).unwrap_or(false);
    // Compared as integers when both are, so a u64 past 2^53 is not rounded into range.
    let order = match (as_integer(instance), as_integer(limit)) {
        (Some(a), Some(b)) => a.cmp(&b),
        _ => found.partial_cmp(&bound).unwrap_or(std::cmp::Ordering::Equal),
    };
    let outside = match (minimum, exclusive) {
        (true, false) => order.is_lt(),
        (true, true) => order.is_le(),
        (false, false) => order.is_gt(),
        (false, true) => order.is_ge(),
    };
    if !outside {
        return Ok(());
    }
    let (found, limit) = (instance.clone(), limit.clone());
    Err(if minimum {
        Problem::BelowMinimum { at: at.clone(), found, limit }
    } else {
        Problem::AboveMaximum { at: at.clone(), found, limit }
    })
}

fn as_integer(value: &Value) -> Option<i128> {
    value.as_i64().map(i128::from).or_else(|| value.as_u64().map(i128::from))
}

fn length(instance: &Value, keyword: &str, limit: &Value, at: &Pointer) -> Result<(), Problem> {
    let count = match (keyword, instance) {
        ("minItems" | "maxItems", Value::Array(a)) => a.len(),
        // Draft 4 counts characters, not bytes.
        ("minLength" | "maxLength", Value::String(s)) => s.chars().count(),
        _ => return Ok(()),
    };
    let Some(limit) = limit.as_u64() else { return Ok(()) };
    let within = if keyword.starts_with("min") { count as u64 >= limit } else { count as u64 <= limit };
    if within {
        return Ok(());
    }
    let keyword = match keyword {
        "minItems" => "minItems",
        "maxItems" => "maxItems",
        "minLength" => "minLength",
        _ => "maxLength",
    };
    Err(Problem::Length { at: at.clone(), keyword, count, limit })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    /// SUPPORTED (what a file is vetted against) and the validator's keywords are one set.
    #[test]
    fn every_supported_keyword_is_checked_and_no_other() {
        let definitions = Map::from_iter([("D".to_owned(), json!({}))]);
        for keyword in SUPPORTED {
            let value = match *keyword {
                "$ref" => json!("#/definitions/D"),
                "type" => json!("null"),
                "properties" | "additionalProperties" | "items" => json!({}),
                "required" | "enum" | "allOf" => json!([]),
                "exclusiveMinimum" | "exclusiveMaximum" => json!(false),
                _ => json!(0),
            };
            let result = validate(&Value::Null, &json!({ *keyword: value }), &definitions);
            assert!(!matches!(result, Err(Problem::UnsupportedKeyword { .. })), "{keyword}: {result:?}");
        }
        let other = validate(&Value::Null, &json!({"not": {}}), &definitions);
        assert!(matches!(other, Err(Problem::UnsupportedKeyword { .. })));
        assert_eq!(unsupported_keywords(&json!({"not": {}})), ["not"]);
    }
}
