//! Step types of the object group against their real counterparts (see each test).
