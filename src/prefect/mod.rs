//! Prefect REST API client and models.
