//! Finds every [`SecretRef`] of a struct, with its field path, by serializing the struct into a
//! serializer that writes nothing: each reference serializes under a marker name and hands
//! over its slot (see `secret_ref`). Paths are spelled as a deserialization error's are (see
//! `path`): `database.password`, `servers[1].token`, `.` for the root.

use std::fmt::{self, Display};
use std::sync::Arc;

use serde::Serialize;
use serde::ser::{self, Impossible};

use super::path;
use super::secret_ref::{MARKER, SecretRef, Slot, take_handed, walking};

/// One reference found, where it was found.
pub(super) struct Found {
    pub(super) field: String,
    pub(super) slot: Arc<Slot>,
}

/// Every reference in `value`, in serialization order.
///
/// # Errors
/// The struct's own serialization error (its message: never a value of ours, since the
/// walker serializes no value).
pub(super) fn references<T: Serialize + ?Sized>(value: &T) -> Result<Vec<Found>, WalkError> {
    let mut walker = Walker::default();
    walking(|| value.serialize(&mut walker))?;
    Ok(walker.found)
}

/// Every reference of `value` with its field path (for a dry run or a linter).
///
/// # Errors
/// `CONFIG_PARSE` when the struct cannot be serialized.
pub fn references_of<T: Serialize + ?Sized>(
    value: &T,
) -> Result<Vec<(String, SecretRef)>, super::LoadError> {
    let found = references(value).map_err(|e| super::LoadError::Walk { reason: e.0 })?;
    Ok(found
        .into_iter()
        .map(|f| (f.field, SecretRef(f.slot)))
        .collect())
}

#[derive(Debug)]
pub(super) struct WalkError(pub(super) String);

impl Display for WalkError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for WalkError {}

impl ser::Error for WalkError {
    fn custom<M: Display>(message: M) -> Self {
        Self(message.to_string())
    }
}

enum Segment {
    Index(usize),
    Name(String),
    /// A map key that is not a string, number, boolean or character.
    Unknown,
}

#[derive(Default)]
struct Walker {
    path: Vec<Segment>,
    /// The next index of each sequence being walked.
    indices: Vec<usize>,
    /// A map's key, between `serialize_key` and `serialize_value`.
    key: Option<Segment>,
    found: Vec<Found>,
}

impl Walker {
    fn field(&self) -> String {
        path::spell(self.path.iter().map(|segment| match segment {
            Segment::Index(index) => path::Segment::Index(*index),
            Segment::Name(name) => path::Segment::Name(name),
            Segment::Unknown => path::Segment::Unknown,
        }))
    }

    fn under<T: Serialize + ?Sized>(
        &mut self,
        segment: Segment,
        value: &T,
    ) -> Result<(), WalkError> {
        self.path.push(segment);
        let result = value.serialize(&mut *self);
        self.path.pop();
        result
    }

    fn next_index<T: Serialize + ?Sized>(&mut self, value: &T) -> Result<(), WalkError> {
        let index = self.indices.last().copied().unwrap_or(0);
        if let Some(last) = self.indices.last_mut() {
            *last += 1;
        }
        self.under(Segment::Index(index), value)
    }
}

macro_rules! nothing {
    ($($method:ident($ty:ty)),* $(,)?) => {
        $(fn $method(self, _: $ty) -> Result<(), WalkError> { Ok(()) })*
    };
}

impl ser::Serializer for &mut Walker {
    type Ok = ();
    type Error = WalkError;
    type SerializeSeq = Self;
    type SerializeTuple = Self;
    type SerializeTupleStruct = Self;
    type SerializeTupleVariant = Self;
    type SerializeMap = Self;
    type SerializeStruct = Self;
    type SerializeStructVariant = Self;

    nothing!(
        serialize_bool(bool),
        serialize_i8(i8),
        serialize_i16(i16),
        serialize_i32(i32),
        serialize_i64(i64),
        serialize_i128(i128),
        serialize_u8(u8),
        serialize_u16(u16),
        serialize_u32(u32),
        serialize_u64(u64),
        serialize_u128(u128),
        serialize_f32(f32),
        serialize_f64(f64),
        serialize_char(char),
        serialize_str(&str),
        serialize_bytes(&[u8]),
        serialize_unit_struct(&'static str),
    );

    fn serialize_none(self) -> Result<(), WalkError> {
        Ok(())
    }

    fn serialize_some<T: Serialize + ?Sized>(self, value: &T) -> Result<(), WalkError> {
        value.serialize(self)
    }

    fn serialize_unit(self) -> Result<(), WalkError> {
        Ok(())
    }

    fn serialize_unit_variant(
        self,
        _: &'static str,
        _: u32,
        _: &'static str,
    ) -> Result<(), WalkError> {
        Ok(())
    }

    fn serialize_newtype_struct<T: Serialize + ?Sized>(
        self,
        name: &'static str,
        value: &T,
    ) -> Result<(), WalkError> {
        if name == MARKER {
            if let Some(slot) = take_handed() {
                let field = self.field();
                self.found.push(Found { field, slot });
            }
            return Ok(());
        }
        value.serialize(self)
    }

    fn serialize_newtype_variant<T: Serialize + ?Sized>(
        self,
        _: &'static str,
        _: u32,
        variant: &'static str,
        value: &T,
    ) -> Result<(), WalkError> {
        self.under(Segment::Name(variant.to_owned()), value)
    }

    fn serialize_seq(self, _: Option<usize>) -> Result<Self, WalkError> {
        self.indices.push(0);
        Ok(self)
    }

    fn serialize_tuple(self, _: usize) -> Result<Self, WalkError> {
        self.indices.push(0);
        Ok(self)
    }

    fn serialize_tuple_struct(self, _: &'static str, _: usize) -> Result<Self, WalkError> {
        self.indices.push(0);
        Ok(self)
    }

    fn serialize_tuple_variant(
        self,
        _: &'static str,
        _: u32,
        variant: &'static str,
        _: usize,
    ) -> Result<Self, WalkError> {
        self.path.push(Segment::Name(variant.to_owned()));
        self.indices.push(0);
        Ok(self)
    }

    fn serialize_map(self, _: Option<usize>) -> Result<Self, WalkError> {
        Ok(self)
    }

    fn serialize_struct(self, _: &'static str, _: usize) -> Result<Self, WalkError> {
        Ok(self)
    }

    fn serialize_struct_variant(
        self,
        _: &'static str,
        _: u32,
        variant: &'static str,
        _: usize,
    ) -> Result<Self, WalkError> {
        self.path.push(Segment::Name(variant.to_owned()));
        Ok(self)
    }
}

impl ser::SerializeSeq for &mut Walker {
    type Ok = ();
    type Error = WalkError;

    fn serialize_element<T: Serialize + ?Sized>(&mut self, value: &T) -> Result<(), WalkError> {
        self.next_index(value)
    }

    fn end(self) -> Result<(), WalkError> {
        self.indices.pop();
        Ok(())
    }
}

impl ser::SerializeTuple for &mut Walker {
    type Ok = ();
    type Error = WalkError;

    fn serialize_element<T: Serialize + ?Sized>(&mut self, value: &T) -> Result<(), WalkError> {
        self.next_index(value)
    }

    fn end(self) -> Result<(), WalkError> {
        self.indices.pop();
        Ok(())
    }
}

impl ser::SerializeTupleStruct for &mut Walker {
    type Ok = ();
    type Error = WalkError;

    fn serialize_field<T: Serialize + ?Sized>(&mut self, value: &T) -> Result<(), WalkError> {
        self.next_index(value)
    }

    fn end(self) -> Result<(), WalkError> {
        self.indices.pop();
        Ok(())
    }
}

impl ser::SerializeTupleVariant for &mut Walker {
    type Ok = ();
    type Error = WalkError;

    fn serialize_field<T: Serialize + ?Sized>(&mut self, value: &T) -> Result<(), WalkError> {
        self.next_index(value)
    }

    fn end(self) -> Result<(), WalkError> {
        self.indices.pop();
        self.path.pop();
        Ok(())
    }
}

impl ser::SerializeMap for &mut Walker {
    type Ok = ();
    type Error = WalkError;

    fn serialize_key<T: Serialize + ?Sized>(&mut self, key: &T) -> Result<(), WalkError> {
        self.key = Some(match key.serialize(KeyText) {
            Ok(Some(text)) => Segment::Name(text),
            _ => Segment::Unknown,
        });
        Ok(())
    }

    fn serialize_value<T: Serialize + ?Sized>(&mut self, value: &T) -> Result<(), WalkError> {
        let key = self.key.take().unwrap_or(Segment::Unknown);
        self.under(key, value)
    }

    fn end(self) -> Result<(), WalkError> {
        Ok(())
    }
}

impl ser::SerializeStruct for &mut Walker {
    type Ok = ();
    type Error = WalkError;

    fn serialize_field<T: Serialize + ?Sized>(
        &mut self,
        key: &'static str,
        value: &T,
    ) -> Result<(), WalkError> {
        self.under(Segment::Name(key.to_owned()), value)
    }

    fn end(self) -> Result<(), WalkError> {
        Ok(())
    }
}

impl ser::SerializeStructVariant for &mut Walker {
    type Ok = ();
    type Error = WalkError;

    fn serialize_field<T: Serialize + ?Sized>(
        &mut self,
        key: &'static str,
        value: &T,
    ) -> Result<(), WalkError> {
        self.under(Segment::Name(key.to_owned()), value)
    }

    fn end(self) -> Result<(), WalkError> {
        self.path.pop();
        Ok(())
    }
}

/// A map key as path text: strings, numbers, booleans and chars (as `serde_path_to_error`
/// captures a key); anything else is `None`, spelled `?`.
struct KeyText;

macro_rules! key_text {
    ($($method:ident($ty:ty)),* $(,)?) => {
        $(fn $method(self, v: $ty) -> Result<Option<String>, WalkError> { Ok(Some(v.to_string())) })*
    };
}

macro_rules! key_unknown {
    ($($method:ident($($ty:ty),*)),* $(,)?) => {
        $(fn $method(self, $(_: $ty),*) -> Result<Option<String>, WalkError> { Ok(None) })*
    };
}

impl ser::Serializer for KeyText {
    type Ok = Option<String>;
    type Error = WalkError;
    type SerializeSeq = Impossible<Option<String>, WalkError>;
    type SerializeTuple = Impossible<Option<String>, WalkError>;
    type SerializeTupleStruct = Impossible<Option<String>, WalkError>;
    type SerializeTupleVariant = Impossible<Option<String>, WalkError>;
    type SerializeMap = Impossible<Option<String>, WalkError>;
    type SerializeStruct = Impossible<Option<String>, WalkError>;
    type SerializeStructVariant = Impossible<Option<String>, WalkError>;

    key_text!(
        serialize_bool(bool),
        serialize_i8(i8),
        serialize_i16(i16),
        serialize_i32(i32),
        serialize_i64(i64),
        serialize_i128(i128),
        serialize_u8(u8),
        serialize_u16(u16),
        serialize_u32(u32),
        serialize_u64(u64),
        serialize_u128(u128),
        serialize_char(char),
        serialize_str(&str),
    );
    key_unknown!(
        serialize_f32(f32),
        serialize_f64(f64),
        serialize_bytes(&[u8]),
        serialize_none(),
        serialize_unit(),
        serialize_unit_struct(&'static str),
    );

    fn serialize_unit_variant(
        self,
        _: &'static str,
        _: u32,
        variant: &'static str,
    ) -> Result<Option<String>, WalkError> {
        Ok(Some(variant.to_owned()))
    }

    fn serialize_some<T: Serialize + ?Sized>(self, value: &T) -> Result<Option<String>, WalkError> {
        value.serialize(self)
    }

    fn serialize_newtype_struct<T: Serialize + ?Sized>(
        self,
        _: &'static str,
        value: &T,
    ) -> Result<Option<String>, WalkError> {
        value.serialize(self)
    }

    fn serialize_newtype_variant<T: Serialize + ?Sized>(
        self,
        _: &'static str,
        _: u32,
        _: &'static str,
        _: &T,
    ) -> Result<Option<String>, WalkError> {
        Ok(None)
    }

    fn serialize_seq(self, _: Option<usize>) -> Result<Self::SerializeSeq, WalkError> {
        Err(WalkError("a map key that is a sequence".to_owned()))
    }

    fn serialize_tuple(self, _: usize) -> Result<Self::SerializeTuple, WalkError> {
        Err(WalkError("a map key that is a tuple".to_owned()))
    }

    fn serialize_tuple_struct(
        self,
        _: &'static str,
        _: usize,
    ) -> Result<Self::SerializeTupleStruct, WalkError> {
        Err(WalkError("a map key that is a tuple".to_owned()))
    }

    fn serialize_tuple_variant(
        self,
        _: &'static str,
        _: u32,
        _: &'static str,
        _: usize,
    ) -> Result<Self::SerializeTupleVariant, WalkError> {
        Err(WalkError("a map key that is a tuple".to_owned()))
    }

    fn serialize_map(self, _: Option<usize>) -> Result<Self::SerializeMap, WalkError> {
        Err(WalkError("a map key that is a map".to_owned()))
    }

    fn serialize_struct(
        self,
        _: &'static str,
        _: usize,
    ) -> Result<Self::SerializeStruct, WalkError> {
        Err(WalkError("a map key that is a struct".to_owned()))
    }

    fn serialize_struct_variant(
        self,
        _: &'static str,
        _: u32,
        _: &'static str,
        _: usize,
    ) -> Result<Self::SerializeStructVariant, WalkError> {
        Err(WalkError("a map key that is a struct".to_owned()))
    }
}
