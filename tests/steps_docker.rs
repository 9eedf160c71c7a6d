//! Step types of the docker group against their real counterparts (see each test).
