//! The shared token that authenticates Temper's gRPC callers.
//!
//! Every request carries the metadata `authorization: Bearer <token>`. Clients add it with the
//! [`ClientAuth`] interceptor; servers check it with [`ServerAuth`], which answers
//! `UNAUTHENTICATED` when it is missing or wrong (compared in constant time, so the answer's
//! timing does not leak how much of a guess was right). The token comes from an environment
//! variable ([`SharedToken::from_env`]), never from a config file, and is never logged.

use std::fmt;

use tonic::metadata::{Ascii, MetadataValue};
use tonic::service::Interceptor;
use tonic::{Request, Status};

use crate::error::AuthError;

/// The metadata key that carries the token.
pub const AUTHORIZATION: &str = "authorization";

/// A shared secret: non-empty visible ASCII without spaces. `Debug` does not show it.
#[derive(Clone, PartialEq, Eq)]
pub struct SharedToken(String);

impl fmt::Debug for SharedToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SharedToken(<redacted>)")
    }
}

impl SharedToken {
    /// Checks and wraps a token.
    pub fn new(token: impl Into<String>) -> Result<Self, AuthError> {
        Self::checked(token.into(), String::new())
    }

    /// Reads the token from environment variable `var`.
    pub fn from_env(var: &str) -> Result<Self, AuthError> {
        let token = std::env::var(var).map_err(|_| AuthError::MissingEnv {
            var: var.to_string(),
        })?;
        Self::checked(token, format!(" from `${var}`"))
    }

    fn checked(token: String, source_hint: String) -> Result<Self, AuthError> {
        let reason = if token.is_empty() {
            "it is empty"
        } else if !token.bytes().all(|b| b.is_ascii_graphic()) {
            "it has spaces, control or non-ASCII characters"
        } else {
            return Ok(Self(token));
        };
        Err(AuthError::Invalid {
            source_hint,
            reason,
        })
    }

    /// The token itself, e.g. to hand to a child process's environment.
    pub fn expose(&self) -> &str {
        &self.0
    }

    fn header(&self) -> MetadataValue<Ascii> {
        format!("Bearer {}", self.0)
            .parse()
            .expect("a checked token is visible ASCII, a valid metadata value")
    }
}

/// Client interceptor: adds `authorization: Bearer <token>` to every request.
#[derive(Clone)]
pub struct ClientAuth {
    header: MetadataValue<Ascii>,
}

impl fmt::Debug for ClientAuth {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("ClientAuth(<redacted>)")
    }
}

impl ClientAuth {
    /// An interceptor sending this token.
    pub fn new(token: &SharedToken) -> Self {
        Self {
            header: token.header(),
        }
    }
}

impl Interceptor for ClientAuth {
    fn call(&mut self, mut request: Request<()>) -> Result<Request<()>, Status> {
        request
            .metadata_mut()
            .insert(AUTHORIZATION, self.header.clone());
        Ok(request)
    }
}

/// Server interceptor: lets a request through only when it carries the shared token.
#[derive(Clone)]
pub struct ServerAuth {
    expected: Vec<u8>,
}

impl fmt::Debug for ServerAuth {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("ServerAuth(<redacted>)")
    }
}

impl ServerAuth {
    /// A check for this token.
    pub fn new(token: &SharedToken) -> Self {
        Self {
            expected: token.header().as_bytes().to_vec(),
        }
    }

    /// Whether `request` carries the token.
    pub fn check<T>(&self, request: &Request<T>) -> Result<(), Status> {
        match request.metadata().get(AUTHORIZATION) {
            Some(value) if constant_time_eq(value.as_bytes(), &self.expected) => Ok(()),
            Some(_) => Err(Status::unauthenticated(
                "wrong shared token in `authorization` metadata",
            )),
            None => Err(Status::unauthenticated(
                "missing `authorization: Bearer <token>` metadata",
            )),
        }
    }
}

impl Interceptor for ServerAuth {
    fn call(&mut self, request: Request<()>) -> Result<Request<()>, Status> {
        self.check(&request)?;
        Ok(request)
    }
}

/// Equality whose running time depends on the lengths only, not on where the bytes differ.
fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_must_be_visible_ascii_and_are_not_shown() {
        assert!(SharedToken::new("s3cr3t-token").is_ok());
        for bad in ["", "with space", "tab\t", "é"] {
            let err = SharedToken::new(bad).unwrap_err().to_string();
            assert!(err.starts_with("invalid shared token:"), "{err}");
        }
        let token = SharedToken::new("s3cr3t").unwrap();
        assert!(!format!("{token:?}").contains("s3cr3t"));
        assert!(!format!("{:?}", ClientAuth::new(&token)).contains("s3cr3t"));
    }

    #[test]
    fn missing_env_names_the_variable() {
        let err = SharedToken::from_env("TEMPER_TEST_SURELY_UNSET_VAR").unwrap_err();
        assert!(err.to_string().contains("`TEMPER_TEST_SURELY_UNSET_VAR`"));
    }

    #[test]
    fn server_accepts_exactly_the_clients_token() {
        let token = SharedToken::new("abc").unwrap();
        let server = ServerAuth::new(&token);
        let sent = ClientAuth::new(&token).call(Request::new(())).unwrap();
        assert!(server.check(&sent).is_ok());

        let other = ClientAuth::new(&SharedToken::new("abd").unwrap())
            .call(Request::new(()))
            .unwrap();
        let err = server.check(&other).unwrap_err();
        assert_eq!(err.code(), tonic::Code::Unauthenticated);
        assert!(err.message().contains("wrong"));

        let err = server.check(&Request::new(())).unwrap_err();
        assert_eq!(err.code(), tonic::Code::Unauthenticated);
        assert!(err.message().contains("missing"));
    }

    #[test]
    fn constant_time_eq_compares_whole_slices() {
        assert!(constant_time_eq(b"abc", b"abc"));
        assert!(!constant_time_eq(b"abc", b"abd"));
        assert!(!constant_time_eq(b"abc", b"abcd"));
    }
}
