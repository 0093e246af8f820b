//! Files rendered from the table of settings.
