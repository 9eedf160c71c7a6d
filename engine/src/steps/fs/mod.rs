//! Files and backups on local disk: sync, archives, manifests, verification, removal.
