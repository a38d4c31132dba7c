//! The MMDS data store: `PUT /mmds` replaces it, `PATCH /mmds` merges into it (JSON Merge
//! Patch, RFC 7396, as Firecracker), `GET /mmds` reads it; its size is bounded by
//! `--mmds-size-limit`. The guest reads it by path (`lookup`, a JSON pointer).

use serde_json::Value;

/// Firecracker's answer when the store would outgrow its limit (status 413).
pub const TOO_LARGE: &str = "The MMDS patch request doesn't fit.";

#[derive(Clone, Debug)]
pub struct MmdsStore {
    data: Value,
    limit: usize,
}

#[derive(Debug, PartialEq, Eq, thiserror::Error)]
pub enum MmdsError {
    #[error("{TOO_LARGE}")]
    TooLarge,
    #[error("The MMDS data store is not initialized.")]
    NotObject,
}

impl MmdsStore {
    pub fn new(limit: usize) -> MmdsStore {
        MmdsStore { data: Value::Null, limit }
    }

    /// The size limit it was made with.
    pub fn size_limit(&self) -> usize {
        self.limit
    }

    /// What `GET /mmds` shows (`{}` while empty, as Firecracker).
    pub fn get(&self) -> Value {
        match &self.data {
            Value::Null => Value::Object(Default::default()),
            data => data.clone(),
        }
    }

    /// The value at `pointer` (RFC 6901, `""` for the whole store), as the guest asks.
    pub fn lookup(&self, pointer: &str) -> Option<&Value> {
        self.data.pointer(pointer)
    }

    pub fn put(&mut self, value: Value) -> Result<(), MmdsError> {
        if !value.is_object() {
            return Err(MmdsError::NotObject);
        }
        self.check(&value)?;
        self.data = value;
        Ok(())
    }

    pub fn patch(&mut self, patch: Value) -> Result<(), MmdsError> {
        let mut data = self.get();
        merge(&mut data, patch);
        self.check(&data)?;
        self.data = data;
        Ok(())
    }

    fn check(&self, value: &Value) -> Result<(), MmdsError> {
        match serde_json::to_vec(value) {
            Ok(bytes) if bytes.len() <= self.limit => Ok(()),
            _ => Err(MmdsError::TooLarge),
        }
    }
}

/// RFC 7396: objects merge key by key, `null` removes, anything else replaces.
fn merge(target: &mut Value, patch: Value) {
    let Value::Object(patch) = patch else {
        *target = patch;
        return;
    };
    if !target.is_object() {
        *target = Value::Object(Default::default());
    }
    if let Value::Object(map) = target {
        for (key, value) in patch {
            if value.is_null() {
                map.remove(&key);
            } else {
                merge(map.entry(key).or_insert(Value::Null), value);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn put_patch_get() {
        let mut store = MmdsStore::new(100);
        assert_eq!(store.get(), json!({}));
        store.put(json!({"latest": {"meta-data": {"ami-id": "a", "x": 1}}})).unwrap();
        store.patch(json!({"latest": {"meta-data": {"x": null, "y": [1]}}})).unwrap();
        assert_eq!(store.get(), json!({"latest": {"meta-data": {"ami-id": "a", "y": [1]}}}));
        assert_eq!(store.put(json!({"big": "x".repeat(200)})), Err(MmdsError::TooLarge));
        assert_eq!(store.put(json!([1])), Err(MmdsError::NotObject));
        assert_eq!(store.get()["latest"]["meta-data"]["ami-id"], "a", "a refused change changes nothing");
    }
}
