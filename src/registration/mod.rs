//! Certificates for the webhook port and registration of the webhook configurations.
//!
//! `certs` generates a CA and serving certificates; `secret` keeps self-managed ones in a
//! Secret shared by every replica and rotates them; `webhooks` builds the webhook
//! configurations and applies them with the current CA bundle.

pub mod certs;
pub mod manager;
pub mod secret;
pub mod webhooks;

/// Label marking the objects nsoffload creates and may change (Secret, webhook
/// configurations); objects without it are never modified.
pub const MANAGED_BY_LABEL: &str = "app.kubernetes.io/managed-by";
/// Value of [`MANAGED_BY_LABEL`] on nsoffload's objects.
pub const MANAGER: &str = "nsoffload";
/// Field manager of nsoffload's writes (server-side apply and plain writes).
pub const FIELD_MANAGER: &str = "nsoffload";
