//! Small serde helpers that make our JSON read and write like Go's `encoding/json`.

use serde::{Deserialize, Deserializer};

/// Whether a number is zero, for fields Go tags `omitempty`.
pub(crate) fn is_zero<T: Default + PartialEq>(value: &T) -> bool {
    *value == T::default()
}

/// Reads `null` as the type's zero value, as Go does for slices and maps (a nil slice is written `null`).
pub(crate) fn null_as_default<'de, D, T>(deserializer: D) -> Result<T, D::Error>
where
    D: Deserializer<'de>,
    T: Default + Deserialize<'de>,
{
    Ok(Option::<T>::deserialize(deserializer)?.unwrap_or_default())
}
