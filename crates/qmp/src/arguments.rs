//! Typed access to a command's `arguments`, with the errors QEMU's QAPI input visitor reports.
//!
//! A handler takes the members it knows, in its schema's order, then calls
//! [`Arguments::finish`] so that anything left over is refused, as QEMU refuses members its
//! schema does not have:
//!
//! ```
//! # use qmp::{Arguments, QmpError};
//! fn device_del(args: Arguments) -> Result<String, QmpError> {
//!     let mut args = args;
//!     let id: String = args.required("id")?;
//!     args.finish()?;
//!     Ok(id)
//! }
//! ```

use serde::de::DeserializeOwned;
use serde_json::{Map, Value};

use crate::wire::QmpError;

/// A type an argument can be read as, with the QAPI type name QEMU's errors use for it.
pub trait ArgumentType: DeserializeOwned {
    /// Ends "Invalid parameter type for 'x', expected: ..." (`string`, `integer`, ...).
    const EXPECTED: &'static str;
}

macro_rules! argument_types {
    ($expected:literal: $($ty:ty),+) => {
        $(impl ArgumentType for $ty {
            const EXPECTED: &'static str = $expected;
        })+
    };
}

argument_types!("string": String);
argument_types!("boolean": bool);
argument_types!("integer": i8, i16, i32, i64, u8, u16, u32, u64);
argument_types!("number": f64);
argument_types!("object": Map<String, Value>);
argument_types!("any": Value);

impl<T: ArgumentType> ArgumentType for Vec<T> {
    const EXPECTED: &'static str = "array";
}

/// The `arguments` object of a request (empty when the request had none).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Arguments {
    members: Map<String, Value>,
}

impl Arguments {
    pub fn new(members: Map<String, Value>) -> Self {
        Arguments { members }
    }

    pub fn is_empty(&self) -> bool {
        self.members.is_empty()
    }

    /// Takes member `name`: "Parameter 'name' is missing" when absent.
    pub fn required<T: ArgumentType>(&mut self, name: &str) -> Result<T, QmpError> {
        self.optional(name)?.ok_or_else(|| QmpError::generic(format!("Parameter '{name}' is missing")))
    }

    /// Takes member `name` if present. An explicit `null` is a wrong type, not an absence, as
    /// in QEMU.
    pub fn optional<T: ArgumentType>(&mut self, name: &str) -> Result<Option<T>, QmpError> {
        match self.members.remove(name) {
            None => Ok(None),
            Some(value) => convert(name, value).map(Some),
        }
    }

    /// Takes array member `name` whose elements must each be a string from `allowed` (a QAPI
    /// enum), naming a bad element `name[i]` as QEMU does.
    pub fn optional_enum_list(&mut self, name: &str, allowed: &[&str]) -> Result<Option<Vec<String>>, QmpError> {
        let Some(elements) = self.optional::<Vec<Value>>(name)? else {
            return Ok(None);
        };
        let mut values = Vec::with_capacity(elements.len());
        for (i, element) in elements.into_iter().enumerate() {
            let element_name = format!("{name}[{i}]");
            let value: String = convert(&element_name, element)?;
            if !allowed.contains(&value.as_str()) {
                return Err(QmpError::generic(format!("Parameter '{element_name}' does not accept value '{value}'")));
            }
            values.push(value);
        }
        Ok(Some(values))
    }

    /// Refuses whatever was not taken: "Parameter 'x' is unexpected".
    pub fn finish(self) -> Result<(), QmpError> {
        match self.members.keys().next() {
            Some(name) => Err(QmpError::generic(format!("Parameter '{name}' is unexpected"))),
            None => Ok(()),
        }
    }

    /// The raw members, for handlers that pass them on as they are.
    pub fn into_map(self) -> Map<String, Value> {
        self.members
    }
}

fn convert<T: ArgumentType>(name: &str, value: Value) -> Result<T, QmpError> {
    serde_json::from_value(value)
        .map_err(|_| QmpError::generic(format!("Invalid parameter type for '{name}', expected: {}", T::EXPECTED)))
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn args(value: Value) -> Arguments {
        Arguments::new(value.as_object().unwrap().clone())
    }

    fn desc<T: std::fmt::Debug>(result: Result<T, QmpError>) -> String {
        result.unwrap_err().desc
    }

    #[test]
    fn typed_members_are_taken() {
        let mut a = args(json!({"s": "x", "n": 5, "b": true, "l": ["p"], "f": 1.5}));
        assert_eq!(a.required::<String>("s").unwrap(), "x");
        assert_eq!(a.required::<u32>("n").unwrap(), 5);
        assert!(a.required::<bool>("b").unwrap());
        assert_eq!(a.required::<Vec<String>>("l").unwrap(), ["p"]);
        assert_eq!(a.optional::<f64>("f").unwrap(), Some(1.5));
        assert_eq!(a.optional::<String>("absent").unwrap(), None);
        a.finish().unwrap();
    }

    #[test]
    fn errors_use_qemu_messages() {
        assert_eq!(desc(args(json!({})).required::<String>("id")), "Parameter 'id' is missing");
        assert_eq!(
            desc(args(json!({"id": 1})).required::<String>("id")),
            "Invalid parameter type for 'id', expected: string"
        );
        assert_eq!(
            desc(args(json!({"n": "1"})).optional::<i64>("n")),
            "Invalid parameter type for 'n', expected: integer"
        );
        assert_eq!(
            desc(args(json!({"b": null})).optional::<bool>("b")),
            "Invalid parameter type for 'b', expected: boolean"
        );
        assert_eq!(desc(args(json!({"zz": 1})).finish()), "Parameter 'zz' is unexpected");
    }

    #[test]
    fn enum_lists_name_the_bad_element() {
        let allowed = ["oob"];
        assert_eq!(args(json!({"e": []})).optional_enum_list("e", &allowed).unwrap(), Some(vec![]));
        assert_eq!(
            desc(args(json!({"e": ["oob", "x"]})).optional_enum_list("e", &allowed)),
            "Parameter 'e[1]' does not accept value 'x'"
        );
        assert_eq!(
            desc(args(json!({"e": [1]})).optional_enum_list("e", &allowed)),
            "Invalid parameter type for 'e[0]', expected: string"
        );
        assert_eq!(
            desc(args(json!({"e": "oob"})).optional_enum_list("e", &allowed)),
            "Invalid parameter type for 'e', expected: array"
        );
    }
}
