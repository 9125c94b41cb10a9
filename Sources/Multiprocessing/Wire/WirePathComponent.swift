// WirePathComponent.swift
//
// How a node of the wire encoder or decoder is reached from its parent: the piece of the coding
// path it adds, kept cheap until an error or custom code asks for `codingPath`.

/// How an encoder or decoder node is reached from its parent; turned into a `CodingKey`
/// only when `codingPath` is asked for (rarely: errors and custom code).
enum WirePathComponent {
    case none
    case key(any CodingKey)
    case index(Int)

    var codingKey: (any CodingKey)? {
        switch self {
        case .none: return nil
        case .key(let key): return key
        case .index(let index): return WireKey(index: index)
        }
    }
}
