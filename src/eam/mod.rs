//! The EAM protocol endpoints and the state a sign-in carries between them.

pub mod claims;
pub mod form;
pub mod pages;
pub mod transaction;
