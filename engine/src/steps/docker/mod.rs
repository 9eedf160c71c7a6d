//! Docker step types, talking to the engine API through bollard (`DOCKER_HOST` honoured).
