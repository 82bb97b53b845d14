//! bluegreen backend for docker (being built; see the issue tracker).
