//! The frame rewriter: keeps L2-L4 headers, drops payload, anonymises every address.
