//! STIX 2.1 for OpenCTI: deterministic [`ids`], the [`objects`] the enrichment creates,
//! the [`bundle`] builder that gives them provenance, and TLP [`markings`].

pub mod bundle;
pub mod ids;
pub mod markings;
pub mod objects;

pub use bundle::{BundleBuilder, Provenance, Seen};
