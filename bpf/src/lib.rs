//! The XDP program that cuts frames to their headers in the kernel, and its loader.
