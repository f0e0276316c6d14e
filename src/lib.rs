//! vouch: an External Authentication Method provider for Microsoft Entra ID.
//!
//! Entra sends a user's browser here with a signed `id_token_hint`; vouch
//! proves one of the user's enrolled factors and posts a signed `id_token`
//! back. The modules follow the request path: [`eam`] speaks the protocol,
//! [`jose`] checks and builds the tokens, [`entra`] keeps Entra's signing
//! keys, [`factor`] proves factors, and [`signer`] holds the token key.

pub mod admin;
pub mod admission;
pub mod app;
pub mod audit;
pub mod config;
pub mod eam;
pub mod entra;
pub mod factor;
pub mod jose;
pub mod oversight;
pub mod pki;
pub mod provision;
pub mod seal;
pub mod server;
pub mod signer;
pub mod store;
pub mod systemd;
