//! Params and results of every method, as the official SDK and the published plugins put
//! them on the wire.
//!
//! Rules that hold for every type here:
//! - unknown fields are ignored (forward compatibility);
//! - arrays the SDK declares as required are always sent, as `[]` when empty, and default
//!   to empty when a plugin leaves them out;
//! - a vocabulary value the host does not know is kept as an `Unrecognized`
//!   variant rather than failing the whole answer;
//! - where two shapes exist in the wild, both are accepted and normalized to one.

pub mod initialize;
pub mod lenient;
pub mod library;
pub mod metadata;
pub mod numbers;
pub mod recommendations;
pub mod releases;
pub mod storage;
pub mod sync;

/// Defines a string vocabulary that keeps values it does not know.
macro_rules! vocabulary {
    ($(#[$meta:meta])* $name:ident { $($variant:ident => $text:literal),+ $(,)? }) => {
        $(#[$meta])*
        #[derive(Debug, Clone, PartialEq, Eq, Hash)]
        pub enum $name {
            $($variant,)+
            /// A value this host does not know, kept as it came.
            Unrecognized(String),
        }

        impl $name {
            /// Every value this host knows, as written on the wire.
            pub const KNOWN: &'static [&'static str] = &[$($text),+];

            pub fn as_str(&self) -> &str {
                match self {
                    $(Self::$variant => $text,)+
                    Self::Unrecognized(text) => text,
                }
            }
        }

        impl From<&str> for $name {
            fn from(text: &str) -> Self {
                match text {
                    $($text => Self::$variant,)+
                    other => Self::Unrecognized(other.to_owned()),
                }
            }
        }

        impl serde::Serialize for $name {
            fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
                serializer.serialize_str(self.as_str())
            }
        }

        impl<'de> serde::Deserialize<'de> for $name {
            fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
                let text = <std::borrow::Cow<'de, str>>::deserialize(deserializer)?;
                Ok(Self::from(text.as_ref()))
            }
        }
    };
}
pub(crate) use vocabulary;

#[cfg(test)]
mod tests {
    vocabulary!(Colour { Red => "red", Blue => "blue" });

    #[test]
    fn vocabularies_keep_unknown_values() {
        let colours: Vec<Colour> = serde_json::from_str(r#"["red","teal"]"#).unwrap();
        assert_eq!(colours, vec![Colour::Red, Colour::Unrecognized("teal".into())]);
        assert_eq!(serde_json::to_string(&colours).unwrap(), r#"["red","teal"]"#);
        assert_eq!(Colour::KNOWN, ["red", "blue"], "the known values, in order");
    }
}
