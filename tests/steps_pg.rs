//! Step types of the pg group against their real counterparts (see each test).
