//! The ERF file writer: single files or rotated directories, META records and sidecars.
