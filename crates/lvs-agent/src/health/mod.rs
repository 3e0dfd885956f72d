//! Health checks of real servers, run by directors (work in progress).
