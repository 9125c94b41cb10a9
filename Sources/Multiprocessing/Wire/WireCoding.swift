// WireCoding.swift
//
// The namespace of the binary wire format's entry points (the format itself: WireFormat.swift).
// `WireCoding.encode` lives in WireEncoder.swift and `WireCoding.decode` / `skipValue` in
// WireDecoder.swift, beside the encoder and decoder they drive: release builds compile each
// file of the module into an LLVM module of its own (whole-module optimisation with
// `-num-threads`), so the entry points, the coder and its containers share a file to be
// optimised as one unit.

/// Entry points of the wire format; see ``WireTag`` for the format itself.
enum WireCoding {}
