//! IRC message parsing and serialisation.
