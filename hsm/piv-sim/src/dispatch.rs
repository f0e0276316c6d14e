//! The trussed service behind the emulated card: which backends answer the PIV applet's
//! requests, and which serde extensions it may call.
//!
//! The applet needs, beside trussed's core: PIN storage (`trussed-auth`), RSA
//! (`trussed-rsa-alloc`, software RSA with an allocator), and from the staging backend the
//! chunked, wrap-key-to-file and HPKE extensions. Requests go to the custom backends first,
//! in the order of [`BACKENDS`]; each answers `RequestNotAvailable` for what it does not do,
//! and trussed's core handles the rest.

use trussed::Platform;
use trussed::backend::{Backend as _, BackendId};
use trussed::serde_extensions::{ExtensionDispatch, ExtensionId, ExtensionImpl};
use trussed::service::ServiceResources;
use trussed::types::Context;
use trussed_auth::AuthExtension;
use trussed_auth_backend::{AuthBackend, AuthContext, FilesystemLayout};
use trussed_chunked::ChunkedExtension;
use trussed_core::Error;
use trussed_core::api::{Reply, Request, reply, request};
use trussed_core::types::Location;
use trussed_hpke::HpkeExtension;
use trussed_rsa_alloc::SoftwareRsa;
use trussed_staging::{StagingBackend, StagingContext};
use trussed_wrap_key_to_file::WrapKeyToFileExtension;

/// The custom backends, by the id the service routes with.
#[derive(Debug, Clone, Copy)]
pub enum Backend {
    Rsa,
    Auth,
    Staging,
}

/// The serde extensions the applet uses, by the id carried in each request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Extension {
    Auth = 1,
    Chunked = 2,
    WrapKeyToFile = 3,
    Hpke = 4,
}

/// Tried in this order for every request from the applet.
pub const BACKENDS: &[BackendId<Backend>] = &[
    BackendId::Custom(Backend::Rsa),
    BackendId::Custom(Backend::Auth),
    BackendId::Custom(Backend::Staging),
    BackendId::Core,
];

/// The backends' state for the one client, the applet.
#[derive(Default)]
pub struct CardContext {
    auth: AuthContext,
    staging: StagingContext,
}

pub struct CardDispatch {
    rsa: SoftwareRsa,
    auth: AuthBackend,
    staging: StagingBackend,
}

impl CardDispatch {
    pub fn new() -> CardDispatch {
        CardDispatch {
            rsa: SoftwareRsa,
            auth: AuthBackend::new(Location::Internal, FilesystemLayout::V1),
            staging: StagingBackend::new(),
        }
    }
}

impl From<Extension> for u8 {
    fn from(extension: Extension) -> u8 {
        extension as u8
    }
}

impl TryFrom<u8> for Extension {
    type Error = Error;

    fn try_from(id: u8) -> Result<Extension, Error> {
        [
            Extension::Auth,
            Extension::Chunked,
            Extension::WrapKeyToFile,
            Extension::Hpke,
        ]
        .into_iter()
        .find(|e| *e as u8 == id)
        .ok_or(Error::InternalError)
    }
}

impl ExtensionDispatch for CardDispatch {
    type BackendId = Backend;
    type Context = CardContext;
    type ExtensionId = Extension;

    fn core_request<P: Platform>(
        &mut self,
        backend: &Backend,
        ctx: &mut Context<CardContext>,
        request: &Request,
        resources: &mut ServiceResources<P>,
    ) -> Result<Reply, Error> {
        let core = &mut ctx.core;
        match backend {
            Backend::Rsa => self.rsa.request(core, &mut (), request, resources),
            Backend::Auth => self
                .auth
                .request(core, &mut ctx.backends.auth, request, resources),
            Backend::Staging => {
                self.staging
                    .request(core, &mut ctx.backends.staging, request, resources)
            }
        }
    }

    fn extension_request<P: Platform>(
        &mut self,
        backend: &Backend,
        extension: &Extension,
        ctx: &mut Context<CardContext>,
        request: &request::SerdeExtension,
        resources: &mut ServiceResources<P>,
    ) -> Result<reply::SerdeExtension, Error> {
        let core = &mut ctx.core;
        let staging = &mut ctx.backends.staging;
        match (backend, extension) {
            (Backend::Auth, Extension::Auth) => {
                ExtensionImpl::<AuthExtension>::extension_request_serialized(
                    &mut self.auth,
                    core,
                    &mut ctx.backends.auth,
                    request,
                    resources,
                )
            }
            (Backend::Staging, Extension::Chunked) => {
                ExtensionImpl::<ChunkedExtension>::extension_request_serialized(
                    &mut self.staging,
                    core,
                    staging,
                    request,
                    resources,
                )
            }
            (Backend::Staging, Extension::WrapKeyToFile) => {
                ExtensionImpl::<WrapKeyToFileExtension>::extension_request_serialized(
                    &mut self.staging,
                    core,
                    staging,
                    request,
                    resources,
                )
            }
            (Backend::Staging, Extension::Hpke) => {
                ExtensionImpl::<HpkeExtension>::extension_request_serialized(
                    &mut self.staging,
                    core,
                    staging,
                    request,
                    resources,
                )
            }
            _ => Err(Error::RequestNotAvailable),
        }
    }
}

macro_rules! extension_id {
    ($($extension:ty => $id:expr),* $(,)?) => {
        $(impl ExtensionId<$extension> for CardDispatch {
            type Id = Extension;
            const ID: Extension = $id;
        })*
    };
}

extension_id! {
    AuthExtension => Extension::Auth,
    ChunkedExtension => Extension::Chunked,
    WrapKeyToFileExtension => Extension::WrapKeyToFile,
    HpkeExtension => Extension::Hpke,
}
