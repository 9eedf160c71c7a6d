//! Object storage: `object.sync` between S3-compatible storage, Azure Blob, GCS and local folders.
