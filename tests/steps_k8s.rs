//! Step types of the k8s group against their real counterparts (see each test).
