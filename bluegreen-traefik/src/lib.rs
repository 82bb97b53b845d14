//! bluegreen backend for traefik (being built; see the issue tracker).
