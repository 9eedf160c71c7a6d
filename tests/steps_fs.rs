//! Step types of the fs group against their real counterparts (see each test).
