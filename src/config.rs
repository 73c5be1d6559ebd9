//! Worker settings.
