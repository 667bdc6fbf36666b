//! Certificates for the webhook port (and, later, webhook configuration registration).

pub mod certs;
