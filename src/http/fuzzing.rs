//! The JSON request bodies of the API by name, for the fuzz targets in `fuzz/`: the
//! body types stay private to their routes and this is the one door to them.
//!
//! Each kind decodes exactly as its route does ([`super::request`]'s strict decoding
//! into the route's own type), so a property that holds here holds on the wire.

use serde::de::{self, DeserializeOwned, Visitor};

use super::request::decode_json;
use super::{accounts, adjustments, auth, bodies, bulk, transfers};
use crate::error::Error;

/// Declares the kinds once: name, body type, route.
macro_rules! request_kinds {
    ($($kind:ident => $body:ty, $route:literal;)*) => {
        /// A JSON request body of the API.
        #[derive(Clone, Copy, Debug, PartialEq, Eq)]
        pub enum RequestKind {
            $(
                #[doc = $route]
                $kind,
            )*
        }

        impl RequestKind {
            /// Every kind.
            pub const ALL: &'static [RequestKind] = &[$(RequestKind::$kind),*];

            /// The route (or routes) that decode this body.
            pub fn route(self) -> &'static str {
                match self {
                    $(RequestKind::$kind => $route,)*
                }
            }

            /// Decodes `bytes` strictly as the route does; the value is dropped.
            pub fn decode(self, bytes: &[u8]) -> Result<(), Error> {
                match self {
                    $(RequestKind::$kind => decode_json::<$body>(bytes).map(drop),)*
                }
            }

            /// The body's field names, as serde sees them.
            pub fn fields(self) -> &'static [&'static str] {
                match self {
                    $(RequestKind::$kind => fields_of::<$body>(),)*
                }
            }
        }
    };
}

request_kinds! {
    Login => auth::LoginBody, "POST /api/v1/auth/login/";
    OwnPassword => auth::OwnPasswordBody, "POST /api/v1/auth/password/";
    OptionalReason => auth::OptionalReason, "POST /api/v1/auth/logout/, /api/v1/users/{username}/disable|enable/";
    UserCreate => auth::CreateUserBody, "POST /api/v1/users/";
    UserRole => auth::RoleBody, "POST /api/v1/users/{username}/role/";
    UserPassword => auth::PasswordBody, "POST /api/v1/users/{username}/password/";
    AccountCreate => accounts::CreateBody, "POST /api/v1/accounts/";
    Reason => bodies::ReasonBody, "POST …/freeze|unfreeze/, adjustments|transfers|bulk/jobs/{id}/reject/";
    Cash => accounts::CashBody, "POST /api/v1/accounts/{msisdn}/deposit|withdraw/";
    TransferCreate => transfers::P2pBody, "POST /api/v1/transfers/";
    Resolve => bodies::ResolveBody, "POST /api/v1/transfers/{id}/resolve/, …/items/{line}/resolve/";
    AdjustmentCreate => adjustments::CreateBody, "POST /api/v1/adjustments/";
    Empty => bodies::Empty, "POST …/approve/ (adjustments, transfers), bulk/jobs/{id}/pause|resume|cancel/";
    JobApprove => bulk::ApproveBody, "POST /api/v1/bulk/jobs/{id}/approve|retry/";
}

/// The field list serde derives for a struct, read by asking it to deserialize from a
/// deserializer that only records the list.
fn fields_of<T: DeserializeOwned>() -> &'static [&'static str] {
    let mut probe = FieldProbe(&[]);
    // The probe always refuses: only the recorded list matters.
    let _ = T::deserialize(&mut probe);
    probe.0
}

struct FieldProbe(&'static [&'static str]);

impl<'de> de::Deserializer<'de> for &mut FieldProbe {
    type Error = de::value::Error;

    fn deserialize_any<V: Visitor<'de>>(self, _: V) -> Result<V::Value, Self::Error> {
        Err(de::Error::custom("not a struct"))
    }

    fn deserialize_struct<V: Visitor<'de>>(
        self,
        _: &'static str,
        fields: &'static [&'static str],
        _: V,
    ) -> Result<V::Value, Self::Error> {
        self.0 = fields;
        Err(de::Error::custom("fields recorded"))
    }

    serde::forward_to_deserialize_any! {
        bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char str string bytes byte_buf
        option unit unit_struct newtype_struct seq tuple tuple_struct map enum identifier ignored_any
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_kind_names_its_fields() {
        assert_eq!(RequestKind::Login.fields(), ["username", "password"]);
        assert_eq!(RequestKind::Empty.fields(), [] as [&str; 0]);
        for kind in RequestKind::ALL {
            let has_fields = !kind.fields().is_empty();
            let empty = matches!(kind, RequestKind::Empty);
            assert!(has_fields ^ empty, "{kind:?}");
        }
    }

    #[test]
    fn kinds_decode_like_their_routes() {
        let ok = br#"{"sender_msisdn":"22507000001","receiver_msisdn":"22507000002","amount":12.5}"#;
        assert_eq!(RequestKind::TransferCreate.decode(ok), Ok(()));
        let e = RequestKind::TransferCreate.decode(br#"{"amount":"1","fee":2}"#).expect_err("unknown field");
        assert_eq!(e.code, "UNKNOWN_FIELD");
    }
}
