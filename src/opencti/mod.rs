//! OpenCTI platform protocol.
