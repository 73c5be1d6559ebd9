//! Job-template rendering and the ACI job configuration.
