//! bluegreen backend for nginx (being built; see the issue tracker).
